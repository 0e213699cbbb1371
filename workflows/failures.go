package workflows

import (
	"slices"

	"github.com/dispatcherhq/dispatcher"
)

// PairSeparator joins an error class and a dispatcher id in
// DispatchErrorClasses. Neither classes (constants) nor dispatcher ids
// (hex) contain it.
const PairSeparator = "@"

// errorPairs returns "class@dispatcherID" for every action that failed
// (every one counted in DispatchFailedActionIDs: neither succeeded nor
// skipped), each once, sorted. A failed dispatch records them in
// DispatchErrorClasses next to the plain classes: SQL visibility has only
// three KeywordList slots per namespace, all in use, and the pairs let a
// failures summary group by class and dispatcher without reading a single
// history, while filtering by a plain class keeps working. A skipped
// action is no failure and has no class: it made an "@dispatcherID" pair,
// a failures summary group of no class, before skipped ones were left out.
// The pairs are bounded with the classes (BoundKeywords): a run whose
// pairs pass the budget records the first ones only, and a failures
// summary does not count it under the dispatchers of those cut off.
func errorPairs(outcomes []dispatcher.ActionOutcome) []string {
	var pairs []string
	for _, o := range outcomes {
		if o.Status == dispatcher.OutcomeSucceeded || o.Status == dispatcher.OutcomeSkipped {
			continue
		}
		p := o.ErrorClass + PairSeparator + o.DispatcherID
		if !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	slices.Sort(pairs)
	return pairs
}
