package txn

import "testing"

func TestMTIClassGroupsRepeatsAndResponsesButNotAdvices(t *testing.T) {
	for mti, want := range map[string]string{"0200": "20", "0201": "20", "0210": "20", "0220": "22", "0221": "22",
		"0230": "22", "0400": "40", "0401": "40", "0410": "40", "0420": "42", "0421": "42", "0100": "10"} {
		if got := MTIClass(mti); got != want {
			t.Errorf("MTIClass(%s) = %s, want %s", mti, got, want)
		}
	}
}
