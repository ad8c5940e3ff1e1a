package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "600", want: 10 * time.Minute},
		{in: " 600 ", want: 10 * time.Minute},
		{in: "10m", want: 10 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "1d", want: day},
		{in: "1w", want: 7 * day},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1h 30m", want: 90 * time.Minute},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1 hour", want: time.Hour},
		{in: "3 days", want: 3 * day},
		{in: "2weeks", want: 14 * day},
		{in: "1hour+30min", want: 90 * time.Minute},
		{in: "0d 1h 30m", want: 90 * time.Minute},
		{in: "1H", want: time.Hour},
		{in: "90s", want: 90 * time.Second},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "1mo", want: 2629800 * time.Second},
		{in: "1y", want: 31557600 * time.Second},
		{in: "1year-6mo", want: 15778800 * time.Second},
		{in: "1h30m0s", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: "-1", want: Forever},
		{in: "-1d", want: Forever},
		{in: "", wantErr: "empty duration"},
		{in: "10x", wantErr: `unknown unit "x"`},
		{in: "5 # five", wantErr: `unexpected "# five"`},
		{in: "ten", wantErr: "expected a number"},
		{in: "1.2.3s", wantErr: "bad number"},
		{in: "300ms", wantErr: `unknown unit "ms"`},
		{in: "-", wantErr: "expected a number"},
		{in: "1h+", wantErr: "expected a number"},
		{in: "999999999y", wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	for _, in := range []string{"true", "TRUE", "yes", "on", "1", " On "} {
		if b, err := parseBool(in); err != nil || !b {
			t.Errorf("parseBool(%q) = %v, %v; want true", in, b, err)
		}
	}
	for _, in := range []string{"false", "no", "off", "0", "False"} {
		if b, err := parseBool(in); err != nil || b {
			t.Errorf("parseBool(%q) = %v, %v; want false", in, b, err)
		}
	}
	for _, in := range []string{"", "maybe", "2", "true # yes"} {
		if _, err := parseBool(in); err == nil {
			t.Errorf("parseBool(%q) gave no error", in)
		}
	}
}

func TestCommentHint(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"5 # five", true},
		{"5\t#five", true},
		{"5#five", false},
		{"#5", false},
		{"5", false},
	}
	for _, tt := range tests {
		if got := commentHint(tt.in) != ""; got != tt.want {
			t.Errorf("commentHint(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
