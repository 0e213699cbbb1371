package jetstream

import (
	"strings"
	"unicode"
)

// ValidName reports whether n can name a stream or a consumer: at most 255
// bytes, without white space, dots, wildcards (* and >), path separators
// or other characters that cannot be printed.
func ValidName(n string) bool {
	if n == "" || len(n) > 255 {
		return false
	}
	return !strings.ContainsFunc(n, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(".*>/\\", r)
	})
}
