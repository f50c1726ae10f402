package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDialect_Scrub(t *testing.T) {
	d := &dialect{name: DialectPostgres, password: "hunter2secret"}

	t.Run("RemovesPassword", func(t *testing.T) {
		err := d.scrub(fmt.Errorf("dial: password hunter2secret rejected: %w", context.DeadlineExceeded))
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("scrubbed error still contains the password: %v", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Error("scrubbed error no longer matches context.DeadlineExceeded")
		}
		if errors.Unwrap(err) != nil {
			t.Error("scrubbed error hands out the original error")
		}
	})

	t.Run("KeepsOtherErrors", func(t *testing.T) {
		orig := errors.New("connection refused")
		if got := d.scrub(orig); got != orig {
			t.Errorf("scrub changed an error without the password: %v", got)
		}
	})

	t.Run("NoPassword", func(t *testing.T) {
		orig := errors.New("anything")
		if got := (&dialect{name: DialectSQLite}).scrub(orig); got != orig {
			t.Errorf("scrub without a password changed the error: %v", got)
		}
	})
}

func TestNullTime_Scan(t *testing.T) {
	want := time.Date(2026, 12, 4, 15, 4, 5, 123456000, time.UTC)
	sqlite := &dialect{name: DialectSQLite}
	tests := []struct {
		name string
		src  any
		want time.Time
	}{
		{"Time", want.In(time.FixedZone("X", 3600)), want},
		{"SQLiteLayout", sqlite.timeValue(want), want},
		{"Bytes", []byte(sqlite.timeValue(want).(string)), want},
		{"RFC3339", "2026-12-04T16:04:05.123456+01:00", want},
		{"ModerncFormat", "2026-12-04 15:04:05.123456+00:00", want},
		{"SQLiteDatetime", "2026-12-04 15:04:05", want.Truncate(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n nullTime
			if err := n.Scan(tt.src); err != nil {
				t.Fatalf("Scan(%v): %v", tt.src, err)
			}
			if !n.Valid || !n.Time.Equal(tt.want) {
				t.Errorf("Scan(%v) = %v (valid %v), want %v", tt.src, n.Time, n.Valid, tt.want)
			}
			if n.Time.Location() != time.UTC {
				t.Errorf("Scan(%v) location = %v, want UTC", tt.src, n.Time.Location())
			}
		})
	}

	t.Run("Null", func(t *testing.T) {
		n := nullTime{Valid: true}
		if err := n.Scan(nil); err != nil || n.Valid || n.ptr() != nil {
			t.Errorf("Scan(nil) = %+v, %v; want invalid and no error", n, err)
		}
	})

	t.Run("Garbage", func(t *testing.T) {
		var n nullTime
		if err := n.Scan("yesterday"); err == nil {
			t.Error("Scan(yesterday) succeeded")
		}
		if err := n.Scan(42); err == nil {
			t.Error("Scan(42) succeeded")
		}
	})
}

func TestDialect_TimeValueOrder(t *testing.T) {
	// Text comparison of the SQLite form must match time order, including
	// whole seconds next to fractional ones.
	d := &dialect{name: DialectSQLite}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	times := []time.Time{base, base.Add(time.Microsecond), base.Add(100 * time.Millisecond), base.Add(time.Second)}
	for i := 1; i < len(times); i++ {
		prev, cur := d.timeValue(times[i-1]).(string), d.timeValue(times[i]).(string)
		if prev >= cur {
			t.Errorf("%q sorts at or after %q", prev, cur)
		}
	}
}
