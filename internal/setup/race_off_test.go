//go:build !race

package setup

// raceDetector: the race detector slows every request several times.
const raceDetector = false
