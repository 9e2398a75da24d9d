package specs

// fieldClass is the ISO 8583:1987 data class of a field, independent of how a dialect puts it on the
// wire. Each dialect maps every class to moov encodings and prefixes (see wireEncoding), so the field
// table below is written once for all dialects.
type fieldClass int

const (
	classMTI       fieldClass = iota // n4
	classBitmap                      // b64 per bitmap, secondary when bit 1 is set
	classNumeric                     // n, fixed length
	classLLNumeric                   // n..99
	classChar                        // a, an, ans, fixed length
	classLLChar                      // ans..99
	classLLLChar                     // ans..999
	classBinary                      // b, fixed length in bytes
	classLLLBinary                   // b..999, length counts bytes
	classAmount                      // x+n: 'C' or 'D' then digits
	classTrack2                      // z..37: digits and the '=' separator
)

// fieldDef is one row of the ISO 8583:1987 data element table.
type fieldDef struct {
	id     int
	class  fieldClass
	length int // digits, characters or bytes (binary classes), including the sign for classAmount
	desc   string
}

// fields87 is ISO 8583:1987 as jPOS ISO87APackager numbers it, with the deviations documented in
// docs/dialects.md: 55 is binary (EMV BER-TLV, at most 255 bytes), 96 is b8 as the standard says,
// and 65 is left out because moov reads bit 65 as the presence bit of a third bitmap.
var fields87 = []fieldDef{
	{0, classMTI, 4, "Message Type Indicator"},
	{1, classBitmap, 8, "Bitmap"},
	{2, classLLNumeric, 19, "Primary Account Number"},
	{3, classNumeric, 6, "Processing Code"},
	{4, classNumeric, 12, "Amount, Transaction"},
	{5, classNumeric, 12, "Amount, Settlement"},
	{6, classNumeric, 12, "Amount, Cardholder Billing"},
	{7, classNumeric, 10, "Transmission Date and Time"},
	{8, classNumeric, 8, "Amount, Cardholder Billing Fee"},
	{9, classNumeric, 8, "Conversion Rate, Settlement"},
	{10, classNumeric, 8, "Conversion Rate, Cardholder Billing"},
	{11, classNumeric, 6, "Systems Trace Audit Number"},
	{12, classNumeric, 6, "Time, Local Transaction"},
	{13, classNumeric, 4, "Date, Local Transaction"},
	{14, classNumeric, 4, "Date, Expiration"},
	{15, classNumeric, 4, "Date, Settlement"},
	{16, classNumeric, 4, "Date, Conversion"},
	{17, classNumeric, 4, "Date, Capture"},
	{18, classNumeric, 4, "Merchant Type"},
	{19, classNumeric, 3, "Acquiring Institution Country Code"},
	{20, classNumeric, 3, "PAN Extended Country Code"},
	{21, classNumeric, 3, "Forwarding Institution Country Code"},
	{22, classNumeric, 3, "Point of Service Entry Mode"},
	{23, classNumeric, 3, "Card Sequence Number"},
	{24, classNumeric, 3, "Network International Identifier"},
	{25, classNumeric, 2, "Point of Service Condition Code"},
	{26, classNumeric, 2, "Point of Service PIN Capture Code"},
	{27, classNumeric, 1, "Authorization Identification Response Length"},
	{28, classAmount, 9, "Amount, Transaction Fee"},
	{29, classAmount, 9, "Amount, Settlement Fee"},
	{30, classAmount, 9, "Amount, Transaction Processing Fee"},
	{31, classAmount, 9, "Amount, Settlement Processing Fee"},
	{32, classLLNumeric, 11, "Acquiring Institution Identification Code"},
	{33, classLLNumeric, 11, "Forwarding Institution Identification Code"},
	{34, classLLChar, 28, "PAN Extended"},
	{35, classTrack2, 37, "Track 2 Data"},
	{36, classLLLChar, 104, "Track 3 Data"},
	{37, classChar, 12, "Retrieval Reference Number"},
	{38, classChar, 6, "Authorization Identification Response"},
	{39, classChar, 2, "Response Code"},
	{40, classChar, 3, "Service Restriction Code"},
	{41, classChar, 8, "Card Acceptor Terminal Identification"},
	{42, classChar, 15, "Card Acceptor Identification Code"},
	{43, classChar, 40, "Card Acceptor Name/Location"},
	{44, classLLChar, 25, "Additional Response Data"},
	{45, classLLChar, 76, "Track 1 Data"},
	{46, classLLLChar, 999, "Additional Data - ISO"},
	{47, classLLLChar, 999, "Additional Data - National"},
	{48, classLLLChar, 999, "Additional Data - Private"},
	{49, classChar, 3, "Currency Code, Transaction"},
	{50, classChar, 3, "Currency Code, Settlement"},
	{51, classChar, 3, "Currency Code, Cardholder Billing"},
	{52, classBinary, 8, "Personal Identification Number (PIN) Data"},
	{53, classNumeric, 16, "Security Related Control Information"},
	{54, classLLLChar, 120, "Additional Amounts"},
	{55, classLLLBinary, 255, "ICC Data (EMV BER-TLV)"},
	{56, classLLLChar, 999, "Reserved ISO"},
	{57, classLLLChar, 999, "Reserved National"},
	{58, classLLLChar, 999, "Reserved National"},
	{59, classLLLChar, 999, "Reserved National"},
	{60, classLLLChar, 999, "Reserved Private"},
	{61, classLLLChar, 999, "Reserved Private"},
	{62, classLLLChar, 999, "Reserved Private"},
	{63, classLLLChar, 999, "Reserved Private"},
	{64, classBinary, 8, "Message Authentication Code"},
	{66, classNumeric, 1, "Settlement Code"},
	{67, classNumeric, 2, "Extended Payment Code"},
	{68, classNumeric, 3, "Receiving Institution Country Code"},
	{69, classNumeric, 3, "Settlement Institution Country Code"},
	{70, classNumeric, 3, "Network Management Information Code"},
	{71, classNumeric, 4, "Message Number"},
	{72, classNumeric, 4, "Message Number, Last"},
	{73, classNumeric, 6, "Date, Action"},
	{74, classNumeric, 10, "Credits, Number"},
	{75, classNumeric, 10, "Credits, Reversal Number"},
	{76, classNumeric, 10, "Debits, Number"},
	{77, classNumeric, 10, "Debits, Reversal Number"},
	{78, classNumeric, 10, "Transfer, Number"},
	{79, classNumeric, 10, "Transfer, Reversal Number"},
	{80, classNumeric, 10, "Inquiries, Number"},
	{81, classNumeric, 10, "Authorizations, Number"},
	{82, classNumeric, 12, "Credits, Processing Fee Amount"},
	{83, classNumeric, 12, "Credits, Transaction Fee Amount"},
	{84, classNumeric, 12, "Debits, Processing Fee Amount"},
	{85, classNumeric, 12, "Debits, Transaction Fee Amount"},
	{86, classNumeric, 16, "Credits, Amount"},
	{87, classNumeric, 16, "Credits, Reversal Amount"},
	{88, classNumeric, 16, "Debits, Amount"},
	{89, classNumeric, 16, "Debits, Reversal Amount"},
	{90, classNumeric, 42, "Original Data Elements"},
	{91, classChar, 1, "File Update Code"},
	{92, classChar, 2, "File Security Code"},
	{93, classChar, 6, "Response Indicator"},
	{94, classChar, 7, "Service Indicator"},
	{95, classChar, 42, "Replacement Amounts"},
	{96, classBinary, 8, "Message Security Code"},
	{97, classAmount, 17, "Amount, Net Settlement"},
	{98, classChar, 25, "Payee"},
	{99, classLLNumeric, 11, "Settlement Institution Identification Code"},
	{100, classLLNumeric, 11, "Receiving Institution Identification Code"},
	{101, classLLChar, 17, "File Name"},
	{102, classLLChar, 28, "Account Identification 1"},
	{103, classLLChar, 28, "Account Identification 2"},
	{104, classLLLChar, 100, "Transaction Description"},
	{105, classLLLChar, 999, "Reserved ISO"},
	{106, classLLLChar, 999, "Reserved ISO"},
	{107, classLLLChar, 999, "Reserved ISO"},
	{108, classLLLChar, 999, "Reserved ISO"},
	{109, classLLLChar, 999, "Reserved ISO"},
	{110, classLLLChar, 999, "Reserved ISO"},
	{111, classLLLChar, 999, "Reserved ISO"},
	{112, classLLLChar, 999, "Reserved National"},
	{113, classLLLChar, 999, "Reserved National"},
	{114, classLLLChar, 999, "Reserved National"},
	{115, classLLLChar, 999, "Reserved National"},
	{116, classLLLChar, 999, "Reserved National"},
	{117, classLLLChar, 999, "Reserved National"},
	{118, classLLLChar, 999, "Reserved National"},
	{119, classLLLChar, 999, "Reserved National"},
	{120, classLLLChar, 999, "Reserved Private"},
	{121, classLLLChar, 999, "Reserved Private"},
	{122, classLLLChar, 999, "Reserved Private"},
	{123, classLLLChar, 999, "Reserved Private"},
	{124, classLLLChar, 999, "Reserved Private"},
	{125, classLLLChar, 999, "Reserved Private"},
	{126, classLLLChar, 999, "Reserved Private"},
	{127, classLLLChar, 999, "Reserved Private"},
	{128, classBinary, 8, "Message Authentication Code (secondary)"},
}
