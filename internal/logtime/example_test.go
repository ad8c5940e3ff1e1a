package logtime_test

import (
	"fmt"
	"time"

	"github.com/logjail/logjail/internal/logtime"
)

func ExampleDetector_Find() {
	d, err := logtime.New(nil, logtime.Options{Location: time.UTC})
	if err != nil {
		panic(err)
	}
	now := time.Date(2024, 6, 22, 12, 0, 0, 0, time.UTC)
	line := "[Sun Jun 16 12:00:00.123456 2024] [auth_basic:error] [client 192.0.2.1:1] AH01618"
	m, ok := d.Find(line, now)
	fmt.Println(ok, m.Time)
	fmt.Printf("%q\n", line[:m.Start]+line[m.End:])
	// Output:
	// true 2024-06-16 12:00:00.123456 +0000 UTC
	// "[] [auth_basic:error] [client 192.0.2.1:1] AH01618"
}

func ExampleNew() {
	// the datepattern of fail2ban's apache-badbots filter
	d, err := logtime.New([]string{`^[^\[]*\[({DATE})`, `{^LN-BEG}`}, logtime.Options{Location: time.UTC})
	if err != nil {
		panic(err)
	}
	line := `192.0.2.1 - - [02/Jan/2006:15:04:05 -0700] "GET / HTTP/1.1" 404 12`
	m, _ := d.Find(line, time.Now())
	fmt.Println(m.Time.UTC(), d.FormatName(m.Format))
	_, err = logtime.New([]string{"%Y-%Q"}, logtime.Options{})
	fmt.Println(err)
	// Output:
	// 2006-01-02 22:04:05 +0000 UTC ^[^\[]*\[(Day(?P<_sep>[-/])MON(?P=_sep)ExYear[ :]?24hour:Minute:Second(?:\.Microseconds)?(?: Zone offset)?)
	// date pattern "%Y-%Q": invalid date pattern: unknown directive or unescaped percent sign at %Q
}
