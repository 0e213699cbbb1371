package workflows

import (
	"slices"
	"strings"

	"github.com/dispatcherhq/dispatcher"
)

// pairSeparator joins an error class and a dispatcher id in
// DispatchErrorClasses. Neither classes (constants) nor dispatcher ids
// (hex) contain it.
const pairSeparator = "@"

// errorPairs returns "class@dispatcherID" for every action that did not
// succeed, each once, sorted. A failed dispatch records them in
// DispatchErrorClasses next to the plain classes: SQL visibility has only
// three KeywordList slots per namespace, all in use, and the pairs let a
// failures summary group by class and dispatcher without reading a single
// history, while filtering by a plain class keeps working.
func errorPairs(outcomes []ActionOutcome) []string {
	var pairs []string
	for _, o := range outcomes {
		if o.Status == StatusSucceeded {
			continue
		}
		p := o.ErrorClass + pairSeparator + o.DispatcherID
		if !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	slices.Sort(pairs)
	return pairs
}

// splitErrorClasses separates what a dispatch recorded in
// DispatchErrorClasses into plain classes and class/dispatcher pairs.
// Runs recorded before the pairs existed have none: each class is then
// paired with every dispatcher of the run, the closest honest guess.
func splitErrorClasses(values, dispatcherIDs []string) (classes []string, pairs []dispatcher.ClassDispatcher) {
	for _, v := range values {
		class, dispatcherID, ok := strings.Cut(v, pairSeparator)
		if !ok {
			classes = append(classes, v)
			continue
		}
		pairs = append(pairs, dispatcher.ClassDispatcher{ErrorClass: class, DispatcherID: dispatcherID})
	}
	if len(pairs) == 0 {
		for _, c := range classes {
			for _, d := range dispatcherIDs {
				pairs = append(pairs, dispatcher.ClassDispatcher{ErrorClass: c, DispatcherID: d})
			}
		}
	}
	return classes, pairs
}
