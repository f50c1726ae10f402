package pipeline

import (
	"strings"
	"testing"
)

func TestParseVerdict(t *testing.T) {
	tests := []struct {
		name       string
		output     string
		kind       string
		target     string
		reasonPart string
	}{
		{"Pass", "Looks good.\nVERDICT: PASS\n", VerdictPass, "", "Looks good."},
		{"Route", "Tests fail.\n\nVERDICT: ROUTE", VerdictRoute, "", "Tests fail."},
		{"RouteTarget", "Design is wrong.\nVERDICT: ROUTE:design\n", VerdictRoute, "design", "Design is wrong."},
		{"Escalate", "Needs a human.\nVERDICT: ESCALATE\n", VerdictEscalate, "", "Needs a human."},
		{"LastLineWins", "VERDICT: PASS\nOn second thought:\nVERDICT: ROUTE\n", VerdictRoute, "", "On second thought:"},
		{"Markdown", "ok\n**VERDICT: PASS**\n", VerdictPass, "", "ok"},
		{"LowerCaseValue", "ok\nVERDICT: pass\n", VerdictPass, "", "ok"},
		{"NoVerdict", "I am not sure.\n", VerdictEscalate, "", "no line of the form VERDICT"},
		{"Unknown", "VERDICT: MAYBE\n", VerdictEscalate, "", `unknown verdict "MAYBE"`},
		{"EmptyTarget", "VERDICT: ROUTE:\n", VerdictEscalate, "", "unknown verdict"},
		{"PassWithTarget", "VERDICT: PASS:x\n", VerdictEscalate, "", "unknown verdict"},
		{"OnlyVerdict", "VERDICT: PASS", VerdictPass, "", "verdict of the gate agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := parseVerdict(tt.output)
			if v.Kind != tt.kind {
				t.Errorf("kind = %s, want %s", v.Kind, tt.kind)
			}
			if v.Target != tt.target {
				t.Errorf("target = %q, want %q", v.Target, tt.target)
			}
			if !strings.Contains(v.Reason, tt.reasonPart) {
				t.Errorf("reason = %q, want it to contain %q", v.Reason, tt.reasonPart)
			}
		})
	}
}

func TestExecVerdict(t *testing.T) {
	t.Run("Pass", func(t *testing.T) {
		v := execVerdict([]commandResult{{Name: "a"}, {Name: "b", Skipped: true}})
		if v.Kind != VerdictPass {
			t.Errorf("kind = %s, want PASS: skipped commands do not fail a gate", v.Kind)
		}
	})
	t.Run("Route", func(t *testing.T) {
		v := execVerdict([]commandResult{{Name: "a"}, {Name: "tests", ExitCode: 1}, {Name: "lint", TimedOut: true, Timeout: 1e9}})
		if v.Kind != VerdictRoute {
			t.Fatalf("kind = %s, want ROUTE", v.Kind)
		}
		for _, want := range []string{"2 of 3 commands failed", "tests failed (exit 1)", "lint timed out after 1s"} {
			if !strings.Contains(v.Reason, want) {
				t.Errorf("reason %q lacks %q", v.Reason, want)
			}
		}
	})
}
