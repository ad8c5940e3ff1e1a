package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors a Service returns (wrapped) to choose the HTTP status, and that Client returns
// (wrapped) to the CLI.
var (
	// ErrBadRequest: the request cannot be done as asked (400): a bad address, an ignored
	// address without --force, a configuration with errors on reload.
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound: no such jail or ban (404).
	ErrNotFound = errors.New("not found")
	// ErrNotRunning: the client found no daemon on the socket.
	ErrNotRunning = errors.New("logjail is not running")
)

// Duration is a time.Duration that travels in JSON as a number of seconds (fractions allowed);
// -1 means permanent.
type Duration time.Duration

// Permanent is the Duration of a permanent ban. It has the value of config.Forever, so a
// configured bantime converts with a plain Duration(j.BanTime); every negative Duration is
// permanent, and travels as -1.
const Permanent Duration = -1

// MarshalJSON writes whole seconds as an integer, else a fraction; any negative value as -1.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d < 0 {
		return []byte("-1"), nil
	}
	if time.Duration(d)%time.Second == 0 {
		return []byte(fmt.Sprint(int64(time.Duration(d) / time.Second))), nil
	}
	return json.Marshal(time.Duration(d).Seconds())
}

// UnmarshalJSON reads a number of seconds; any negative number is Permanent.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration: want seconds as a number: %w", err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64/int64(time.Second)) {
		return fmt.Errorf("duration out of range: %v", f)
	}
	if f < 0 {
		*d = Permanent
		return nil
	}
	*d = Duration(f * float64(time.Second))
	return nil
}
