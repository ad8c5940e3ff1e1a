//go:build race

package jail

// raceEnabled skips the tests too slow under the race detector.
const raceEnabled = true
