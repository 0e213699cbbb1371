package workflows

import "go.temporal.io/sdk/converter"

// KeywordListBudget bounds the size of every KeywordList search attribute
// value the dispatcher sets (DispatchDispatcherIDs,
// DispatchFailedActionIDs, DispatchErrorClasses), measured as Temporal
// measures it: the length of the value's payload data, the JSON array the
// SDK encodes (brackets, and per item its quotes, escapes and a comma).
// Temporal refuses a value over frontend.searchAttributesSizeOfValueLimit
// (2 KiB by default) — a start with InvalidArgument, an upsert or a child
// start by terminating the workflow — so an event type with some 75
// dispatchers, or a dispatch with some 75 failed actions, would otherwise
// be refused for good. The budget leaves room below the limit; three such
// values stay far below frontend.searchAttributesTotalSizeLimit (40 KiB).
const KeywordListBudget = 1800

// BoundKeywords returns the longest prefix of values whose encoding fits
// KeywordListBudget: values itself when it fits, else its first items in
// their order, deterministically (it is computed in workflow code). The
// items cut off are then missing from the attribute: a visibility query
// for one of them does not find the run (see the attributes in names.go).
//
// Bounding changes no command, only an attribute's value, which replay
// never compares: the SDK matches an upsert's command to its event, and
// a child's start to its event, by their type alone
// (isCommandMatchEvent), and no workflow reads these attributes back. So
// running workflows replay unchanged without a version.
func BoundKeywords(values []string) []string {
	// A byte of a value encodes in at most 6 (\u003c): a list that fits
	// even so, as nearly all do, is not encoded to be measured.
	worst := len("[]")
	for _, v := range values {
		worst += 6*len(v) + len(`"",`)
	}
	if worst <= KeywordListBudget {
		return values
	}
	size := len("[]")
	for i, v := range values {
		n := keywordSize(v)
		if i > 0 {
			n++ // the comma
		}
		if size+n > KeywordListBudget {
			return values[:i:i]
		}
		size += n
	}
	return values
}

// keywordSize is the length of v in a JSON array, as the SDK's default
// data converter encodes it: quotes and escapes included.
func keywordSize(v string) int {
	p, _ := converter.GetDefaultDataConverter().ToPayload(v) // a string always encodes
	return len(p.GetData())
}
