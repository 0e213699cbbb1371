package dispatcher_test

import (
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// A token's subject that reads as an API key's or the dispatcher's own,
// however spelt, poses as it; others do not. Before, only the ASCII
// spellings in any case were caught, and each of the first list passed.
func TestPosesAsReserved(t *testing.T) {
	const id = "6b11668218a8f2bde2075b31"
	for _, sub := range []string{
		"apikey:" + id, "APIKEY:" + id, " Dispatcher", "dispatcher",
		"\u0430pikey:" + id,                               // Cyrillic a
		"apikey\u200b:" + id,                              // zero-width space
		"ＡＰＩＫＥＹ：" + id,                                    // fullwidth
		"di\u0455\u0440at\u0441her",                       // Cyrillic s, p, c
		"DISPATC\u041dER",                                 // Cyrillic capital En
		"APIKE\u03a5:" + id,                               // Greek capital Upsilon
		"\ua4ee\ua4d1\ua4f2\ua4d7\ua4f0\ua4ec\ua4fd" + id, // Lisu
		"\u13aa\u13e2\u13a5\u13e6\u13ac\u13a9:" + id,      // Cherokee
		"apikey\u0589" + id,                               // Armenian full stop
		"dispatc\u0570er",                                 // Armenian ho
		"APlKEY:" + id, "DlSPATCHER", "AP|KEY:" + id,      // l and | for I
		"\u3164apikey:" + id,     // Hangul filler
		"apikey\u2800:" + id,     // Braille blank
		"apikey\U000E0080:" + id, // an unassigned ignorable
		"API Key: ops",
	} {
		if !dispatcher.PosesAsReserved(sub) {
			t.Errorf("%+q does not pose as a reserved subject", sub)
		}
	}
	for _, sub := range []string{
		"alice", "ann@example.com", "auth0|5f2b3c4d", "ユーザー:7", "user-apikey:1", "dispatcher-bot", "apikeys", "山田太郎", "Ивановапикей",
		"0f8fad5b-d9cb-469f-a165-70867728950e", "google-oauth2|104236",
	} {
		if dispatcher.PosesAsReserved(sub) {
			t.Errorf("%+q poses as a reserved subject", sub)
		}
	}
	if !dispatcher.HasBidiControls("\u202erehctapsid") || dispatcher.HasBidiControls("alice") {
		t.Error("bidirectional controls are not told")
	}
}
