package dukpt

import (
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func upper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// tdesVector is one row of ANSI X9.24-1:2009 A.4: KSN, transaction key (before any variant) and the
// format 0 PIN block 041274EDCBA9876F (PIN 1234, PAN 4012345678909) enciphered under the PIN key.
type tdesVector struct{ ksn, txnKey, pinBlock string }

// aesVector is one row of the ANSI X9.24-3-2017 supplement: KSN and intermediate derivation key.
type aesVector struct{ ksn, derivationKey string }

// Vectors: ANSI X9.24-1:2009 A.4.2/A.4.3 and ANSI X9.24-3-2017 supplement, as tabulated in
// openemv/dukpt test/dukpt_tdes_test.c, test/dukpt_aes128_test.c and test/dukpt_aes256_test.c
// (counter 0x1FFFF is left out there too: it has 17 one-bits).
var x924_1InitialSequence = []tdesVector{
	{"FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A"},
	{"FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107"},
	{"FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466"},
	{"FFFF9876543210E00004", "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7"},
	{"FFFF9876543210E00005", "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327"},
	{"FFFF9876543210E00006", "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8"},
	{"FFFF9876543210E00007", "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E"},
	{"FFFF9876543210E00008", "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551"},
	{"FFFF9876543210E00009", "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D"},
	{"FFFF9876543210E0000A", "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE"},
	{"FFFF9876543210E0000B", "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA"},
	{"FFFF9876543210E0000C", "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286"},
	{"FFFF9876543210E0000D", "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68"},
	{"FFFF9876543210E0000E", "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950"},
	{"FFFF9876543210E0000F", "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A"},
	{"FFFF9876543210E00010", "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6"},
	{"FFFF9876543210E00011", "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863"},
	{"FFFF9876543210E00012", "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D"},
	{"FFFF9876543210E00013", "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60"},
	{"FFFF9876543210E00014", "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56"},
	{"FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6"},
}

var x924_1RolloverSequence = []tdesVector{
	{"FFFF9876543210EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35"},
	{"FFFF9876543210EFF801", "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D"},
	{"FFFF9876543210EFF802", "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F"},
	{"FFFF9876543210EFF804", "35A168695B3BA83307E871C42021DD37", "BA83243305712099"},
	{"FFFF9876543210EFF808", "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85"},
	{"FFFF9876543210EFF810", "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA"},
	{"FFFF9876543210EFF820", "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6"},
	{"FFFF9876543210EFF840", "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C"},
	{"FFFF9876543210EFF880", "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981"},
	{"FFFF9876543210EFF900", "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430"},
	{"FFFF9876543210EFFA00", "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF"},
	{"FFFF9876543210EFFC00", "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71"},
	{"FFFF9876543210F00000", "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E"},
}

var x924_3AES128Keys = []aesVector{
	{"123456789012345600000001", "4F21B565BAD9835E112B6465635EAE44"},
	{"123456789012345600000002", "2F34D68DE10F68D38091A73B9E7C437C"},
	{"123456789012345600000003", "031504E530365CF81264238540518318"},
	{"123456789012345600000004", "0EEFC7ADA628BA68878DA9165A8A1887"},
	{"123456789012345600000005", "C2A7AC328A5DA2D6002D62465BFC028B"},
	{"123456789012345600000006", "D30F7D9351DA58448A2F5E92B4EE3B7D"},
	{"123456789012345600000007", "A8253CEED9AC042C54F75D35C8352278"},
	{"123456789012345600000008", "718EE6CF0B27E53D5F7AF99C4D8146A2"},
	{"12345678901234560001FFFE", "E21E8C8D347F8561A2BE752DAA85A111"},
	{"123456789012345600020000", "F7AE9025468A25D37B7249CFFED224C8"},
	{"123456789012345600020001", "692C8EA4013645135B36497131DF9D2C"},
	{"1234567890123456FFFE2000", "48E585B694EB0B18D5C35443E163C0BA"},
	{"1234567890123456FFFE4000", "396C2C7CA1EA701C03B86B7D41F0C562"},
	{"1234567890123456FFFE8000", "0387625F189B58AE03EF0E8CCA41105E"},
	{"1234567890123456FFFF0000", "F6BA59389BD14A9855BE9727E7C52E3C"},
}

var x924_3AES256Keys = []aesVector{
	{"123456789012345600000001", "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3"},
	{"123456789012345600000002", "5DD5A0253842BBBE1D7C0DA27021412C6F1FAB53FB928DEAE56DA06090A9DE97"},
	{"123456789012345600000003", "8EEEF7C464AE415BB1D73FAED21993CD669F7999092A579EC6DD3CC680C65171"},
	{"123456789012345600000004", "C18CBED570B3B89ECADA7CEC9C224CD5A86ECF3DE377D3EFAB720F8C4D76B9D0"},
	{"123456789012345600000005", "6B3C3C93307151C25DC2309456F01C5C3108DAD571C321899A9B7E0C009FD2EB"},
	{"123456789012345600000006", "B8BB61AE3E2D5CD8C699E0C578FB2C7B89B0C0CF02DBAB60864D8049C986C844"},
	{"123456789012345600000007", "88D0ACA287B3066F5DE0C93396337D4C2DA8D92C1F720A576D62CEB4C979E01E"},
	{"123456789012345600000008", "20A796D5077D51B8E7613893A4F095B134E02917DC84BD391F3661D0873FF308"},
	{"12345678901234560001FFFE", "A289508CBF1228452CD86AB77B15CB35577AC828C18BB66681E5A16D6C9CCED3"},
	{"123456789012345600020000", "D62DDA94A47D7DA5D763443B4ECB15EA8DD62E0E4F915958BA459591F8312E37"},
	{"123456789012345600020001", "44110A1102748D4A3AC326F53D8CAC650212590CA7126D54546DDE0F20E89CEE"},
	{"1234567890123456FFFE2000", "4625EB06E4886D4AFCC9AE37ED4F4E4E1653C9E60E3F24742A87A26AA96AB7A6"},
	{"1234567890123456FFFE4000", "FF20E1BB575539ACCB44E3111BE8757F83AE8549A2DD71B441A4A424F7FFD4B1"},
	{"1234567890123456FFFE8000", "630535C9C53E1EC6524016930B56F6728909C45403536B419AEBCB25B7351C07"},
	{"1234567890123456FFFF0000", "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE"},
}

const (
	x924_1BDK = "0123456789ABCDEFFEDCBA9876543210"
	x924_3BDK = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
)

func TestTDESIPEKMatchesX924_1(t *testing.T) {
	bdk, err := NewTDESBDK(unhex(t, x924_1BDK))
	if err != nil {
		t.Fatal(err)
	}
	// The counter bits are ignored: the initial KSN and any later one give the same IPEK.
	for _, ksn := range []string{"FFFF9876543210E00000", "FFFF9876543210E00001", "FFFF9876543210FFFFFF"} {
		ipek, err := bdk.IPEK(unhex(t, ksn))
		if err != nil {
			t.Fatal(err)
		}
		if upper(ipek[:]) != "6AC292FAA1315B4D858AB3A3D7D5933A" {
			t.Errorf("IPEK(%s) = %X", ksn, ipek)
		}
	}
}

func TestTDESTransactionKeysAndPINBlocksMatchX924_1(t *testing.T) {
	bdk, err := NewTDESBDK(unhex(t, x924_1BDK))
	if err != nil {
		t.Fatal(err)
	}
	clearBlock := unhex(t, "041274EDCBA9876F")
	all := append(append([]tdesVector{}, x924_1InitialSequence...), x924_1RolloverSequence...)
	for _, v := range all {
		t.Run(v.ksn, func(t *testing.T) {
			ksn := unhex(t, v.ksn)
			k, err := bdk.TransactionKey(ksn)
			if err != nil {
				t.Fatal(err)
			}
			if upper(k[:]) != v.txnKey {
				t.Fatalf("transaction key = %X, want %s", k, v.txnKey)
			}
			pk, err := bdk.PINKey(ksn)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tdes.NewCipher(pk[:])
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 8)
			c.Encrypt(got, clearBlock)
			if upper(got) != v.pinBlock {
				t.Errorf("PIN block = %X, want %s", got, v.pinBlock)
			}
		})
	}
}

func TestTDESPINKeyOfFirstKSNMatchesNotes(t *testing.T) {
	// shared/reference/hsm-notes.md (X9.24-1 sample): KSN FFFF9876543210E00001 → PIN key.
	bdk, _ := NewTDESBDK(unhex(t, x924_1BDK))
	pk, err := bdk.PINKey(unhex(t, "FFFF9876543210E00001"))
	if err != nil {
		t.Fatal(err)
	}
	if upper(pk[:]) != "042666B49184CF5C68DE9628D0397B36" {
		t.Errorf("PIN key = %X", pk)
	}
}

func TestTDESVariantsDifferAndDataKeysAreOneWay(t *testing.T) {
	bdk, _ := NewTDESBDK(unhex(t, x924_1BDK))
	ksn := unhex(t, "FFFF9876543210E00001")
	txn, _ := bdk.TransactionKey(ksn)
	seen := map[string]TDESUsage{}
	for _, u := range []TDESUsage{TDESPIN, TDESMACRequest, TDESMACResponse, TDESDataRequest, TDESDataResponse} {
		k, err := bdk.WorkingKey(ksn, u)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[upper(k[:])]; dup {
			t.Errorf("%s and %s give the same key", u, prev)
		}
		seen[upper(k[:])] = u
		// Plain variants differ from the transaction key in exactly the two masked bytes.
		diff := 0
		for i := range k {
			if k[i] != txn[i] {
				diff++
			}
		}
		if u == TDESDataRequest || u == TDESDataResponse {
			if diff <= 2 {
				t.Errorf("%s: data key lacks the one-way step", u)
			}
		} else if diff != 2 {
			t.Errorf("%s: %d bytes differ from the transaction key, want 2", u, diff)
		}
	}
	// MAC request variant: XOR 000000000000FF00 on both halves (X9.24-1 Table A-1).
	mac, _ := bdk.WorkingKey(ksn, TDESMACRequest)
	if mac[6] != txn[6]^0xFF || mac[14] != txn[14]^0xFF {
		t.Errorf("MAC variant at the wrong byte: %X", mac)
	}
	if _, err := bdk.WorkingKey(ksn, TDESUsage(99)); !errors.Is(err, cryptoerr.ErrInvalidInput) {
		t.Errorf("unknown usage: %v", err)
	}
}

func TestTDESRejectsInvalidKSNs(t *testing.T) {
	bdk, _ := NewTDESBDK(unhex(t, x924_1BDK))
	tests := []struct {
		name string
		ksn  string
	}{
		{"counter zero", "FFFF9876543210E00000"},
		{"eleven one-bits", "FFFF9876543210E007FF"},
		{"all 21 bits set", "FFFF9876543210FFFFFF"},
		{"short KSN", "FFFF9876543210E001"},
		{"long KSN", "FFFF9876543210E0000100"},
		{"empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bdk.PINKey(unhex(t, tc.ksn))
			if !errors.Is(err, cryptoerr.ErrKSN) {
				t.Fatalf("err = %v, want ErrKSN", err)
			}
		})
	}
	// Ten one-bits is the most a device uses: accepted.
	if _, err := bdk.PINKey(unhex(t, "FFFF9876543210E003FF")); err != nil {
		t.Errorf("10 one-bits: %v", err)
	}
	if _, err := NewTDESBDK(make([]byte, 24)); !errors.Is(err, cryptoerr.ErrKeyLength) {
		t.Errorf("24-byte BDK: %v", err)
	}
}

func TestAESInitialKeysMatchX924_3(t *testing.T) {
	tests := []struct{ bdk, ik string }{
		// ANSI X9.24-3-2017 B.1 / supplement (openemv/dukpt test/dukpt_aes_test.c)
		{x924_3BDK, "1273671EA26AC29AFA4D1084127652A1"},
		{x924_3BDK + x924_3BDK, "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"},
	}
	for _, tc := range tests {
		bdk, err := NewAESBDK(unhex(t, tc.bdk))
		if err != nil {
			t.Fatal(err)
		}
		ik, err := bdk.InitialKey(unhex(t, "1234567890123456"))
		if err != nil {
			t.Fatal(err)
		}
		if upper(ik) != tc.ik {
			t.Errorf("initial key = %X, want %s", ik, tc.ik)
		}
	}
}

func TestAESDerivationKeysMatchX924_3(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bdk     string
		vectors []aesVector
	}{
		{"AES-128", x924_3BDK, x924_3AES128Keys},
		{"AES-256", x924_3BDK + x924_3BDK, x924_3AES256Keys},
	} {
		bdk, err := NewAESBDK(unhex(t, tc.bdk))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tc.vectors {
			t.Run(tc.name+"/"+v.ksn, func(t *testing.T) {
				k, err := bdk.TransactionKey(unhex(t, v.ksn))
				if err != nil {
					t.Fatal(err)
				}
				if upper(k) != v.derivationKey {
					t.Errorf("derivation key = %X, want %s", k, v.derivationKey)
				}
			})
		}
	}
}

func TestAESWorkingKeysMatchX924_3(t *testing.T) {
	// ANSI X9.24-3-2017 Annex B working keys for BDK FEDCBA9876543210F1F1F1F1F1F1F1F1 and initial key
	// ID 1234567890123456, as reproduced in public DUKPT suites (paysec-dukpt tests, CyberChef payment
	// recipes, the joinforage AES DUKPT fixtures) and in shared/reference/hsm-notes.md.
	tests := []struct {
		bdk     string
		counter uint32
		usage   AESUsage
		kt      KeyType
		want    string
	}{
		{x924_3BDK, 1, AESPINEncryption, KeyAES128, "AF8CB133A78F8DC2D1359F18527593FB"},
		{x924_3BDK, 1, AESMACGeneration, KeyAES128, "A2DC23DE6FDE0824A2BC321E08E4B8B7"},
		{x924_3BDK, 1, AESMACVerification, KeyAES128, "DBB463945B286C07CD3AD82EE96FD9C9"},
		{x924_3BDK, 1, AESMACBoth, KeyAES128, "85675439D18D7F1158BD8E3EAA3D502B"},
		{x924_3BDK, 1, AESDataEncrypt, KeyAES128, "A35C412EFD41FDB98B69797C02DCD08F"},
		{x924_3BDK, 1, AESDataDecrypt, KeyAES128, "16292C6EA8F64C5420A0584BFBC577BE"},
		{x924_3BDK, 1, AESDataBoth, KeyAES128, "A308E080DD15A1B741F1721BF67DE11C"},
		{x924_3BDK, 1, AESKeyEncryption, KeyAES128, "36A724B7BEFA5A25F5E7B5782A4554A2"},
		{x924_3BDK, 2, AESPINEncryption, KeyAES128, "D30BDC73EC9714B000BEC66BDB7B6D09"},
		{x924_3BDK, 2, AESMACGeneration, KeyAES128, "484C3B06E8562704528CD5B46FB12FB6"},
		{x924_3BDK, 2, AESDataEncrypt, KeyAES128, "D639514AA33AC43AD9229E433D6D4E5B"},
		{x924_3BDK, 3, AESPINEncryption, KeyAES128, "7D69F01F3B45449F62C7816ECE723268"},
		{x924_3BDK, 3, AESMACGeneration, KeyAES128, "A5DF7D9D800CA769766F0C77CA4E6E6C"},
		{x924_3BDK, 3, AESDataEncrypt, KeyAES128, "EF17F6AB45B4820C93A3DCB21BC491AD"},
		{x924_3BDK, 4, AESPINEncryption, KeyAES128, "91A0588318EC2673214271F70137896E"},
		{x924_3BDK, 4, AESMACGeneration, KeyAES128, "E6E4679647D8A9057C1FC15537CB4C4E"},
		{x924_3BDK, 8, AESPINEncryption, KeyAES128, "4D9DF3FBEE3448FC3E676D04320A90F5"},
		{x924_3BDK, 8, AESMACGeneration, KeyAES128, "6FD572E5D59E618875F193484F9178FB"},
		{x924_3BDK, 8, AESDataEncrypt, KeyAES128, "650F34204ABD4E57764D61AC3D266FB1"},
		{x924_3BDK, 8675309, AESPINEncryption, KeyAES128, "D1DDA386AA4A556AF0119FDCB5D132C6"},
		// 2TDEA and 3TDEA working keys from the AES-128 BDK (for ISO 0/1/3 PIN pads on AES DUKPT).
		{x924_3BDK, 1, AESPINEncryption, KeyTDES2, "630C706D9546E47D4449313F61C4D4AB"},
		{x924_3BDK, 1, AESMACGeneration, KeyTDES2, "5D8FD787E8A796D07035FFCA9B5800BB"},
		{x924_3BDK, 1, AESDataEncrypt, KeyTDES2, "BD44121C223F831446A01EE3A4CB58D2"},
		{x924_3BDK, 1, AESPINEncryption, KeyTDES3, "EA8B3F37EB9B15831167EF2977FD8762D9B5913F35766F6A"},
		{x924_3BDK, 1, AESMACGeneration, KeyTDES3, "2A1061A6EAC2C14FAC3758EA07B3648A624B24E942785BF1"},
		{x924_3BDK, 1, AESDataEncrypt, KeyTDES3, "F716DFBC6B2D2D5825B694EEEE181A013F2F1C09380BBE0C"},
		// AES-256 working keys from the AES-256 BDK.
		{x924_3BDK + x924_3BDK, 1, AESPINEncryption, KeyAES256, "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502"},
		{x924_3BDK + x924_3BDK, 1, AESMACGeneration, KeyAES256, "61DABDF4B340CF461EE860B1D1AB55357142BD2D6977306859CF49AEFE8F1549"},
		{x924_3BDK + x924_3BDK, 1, AESDataEncrypt, KeyAES256, "71EB36C9A6B7F801D1D1700C29741FC5A5C4E9B45D742DA7AF6992B8AA29AF58"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d-bit BDK/%d/%04X/%s", len(tc.bdk)*4, tc.counter, uint16(tc.usage), tc.kt), func(t *testing.T) {
			bdk, err := NewAESBDK(unhex(t, tc.bdk))
			if err != nil {
				t.Fatal(err)
			}
			ksn := unhex(t, fmt.Sprintf("1234567890123456%08X", tc.counter))
			k, err := bdk.WorkingKey(ksn, tc.usage, tc.kt)
			if err != nil {
				t.Fatal(err)
			}
			if upper(k) != tc.want {
				t.Errorf("working key = %X, want %s", k, tc.want)
			}
		})
	}
}

func TestAESPINKeyEnciphersTheX924_3FormatFourBlock(t *testing.T) {
	// X9.24-3-2017 supplement, format 4 example, transaction 2: the intermediate block A is
	// E(PIN field XOR ... ) — here checked end to end through the first AES step: E(PIN field).
	bdk, _ := NewAESBDK(unhex(t, x924_3BDK))
	pk, err := bdk.PINKey(unhex(t, "123456789012345600000002"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := aes.NewCipher(pk)
	a := make([]byte, 16)
	c.Encrypt(a, unhex(t, "441234AAAAAAAAAA2F69ADDE2E9E7ACE"))
	if upper(a) != "37489F3DB975A040CD1EEE9E68051A44" {
		t.Errorf("E(PIN field) = %X", a)
	}
}

func TestAESRejectsInvalidKSNsAndKeys(t *testing.T) {
	bdk, _ := NewAESBDK(unhex(t, x924_3BDK))
	for name, ksn := range map[string]string{
		"counter zero":    "123456789012345600000000",
		"17 one-bits":     "12345678901234560001FFFF",
		"all bits set":    "1234567890123456FFFFFFFF",
		"TDES-length KSN": "FFFF9876543210E00001",
		"13 bytes":        "12345678901234560000000100",
		"empty":           "",
	} {
		if _, err := bdk.PINKey(unhex(t, ksn)); !errors.Is(err, cryptoerr.ErrKSN) {
			t.Errorf("%s: err = %v, want ErrKSN", name, err)
		}
	}
	// 16 one-bits is the most a device uses: accepted.
	if _, err := bdk.PINKey(unhex(t, "12345678901234560000FFFF")); err != nil {
		t.Errorf("16 one-bits: %v", err)
	}
	for _, n := range []int{0, 8, 15, 17, 33} {
		if _, err := NewAESBDK(make([]byte, n)); !errors.Is(err, cryptoerr.ErrKeyLength) {
			t.Errorf("BDK of %d bytes: %v", n, err)
		}
	}
	// An AES-256 working key cannot come from an AES-128 BDK.
	if _, err := bdk.WorkingKey(unhex(t, "123456789012345600000001"), AESPINEncryption, KeyAES256); !errors.Is(err, cryptoerr.ErrKeyLength) {
		t.Errorf("AES-256 from AES-128: %v", err)
	}
	if _, err := bdk.WorkingKey(unhex(t, "123456789012345600000001"), AESUsage(0x8000), KeyAES128); !errors.Is(err, cryptoerr.ErrInvalidInput) {
		t.Errorf("derivation usage as working key: %v", err)
	}
}

func TestRandomBDKsDeriveDistinctKeysPerCounter(t *testing.T) {
	for i := 0; i < 20; i++ {
		raw := make([]byte, 16)
		rand.Read(raw)
		tb, _ := NewTDESBDK(raw)
		ab, _ := NewAESBDK(raw)
		seen := map[string]bool{}
		for c := uint32(1); c <= 16; c++ {
			tk, err := tb.PINKey(unhex(t, fmt.Sprintf("FFFF9876543210E%05X", c)))
			if err != nil {
				t.Fatal(err)
			}
			ak, err := ab.PINKey(unhex(t, fmt.Sprintf("1234567890123456%08X", c)))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{upper(tk[:]), upper(ak)} {
				if seen[k] {
					t.Fatalf("counter %d repeats a key", c)
				}
				seen[k] = true
			}
		}
	}
}
