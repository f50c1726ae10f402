package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServer runs cliq server start on a free port for p's CLIQ_HOME and
// stops it when the test ends.
func startServer(t *testing.T, p *project) {
	t.Helper()
	cmd := p.command("server", "start", "--port", "0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.run("server", "stop")
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	waitFor(t, 20*time.Second, "server.json", func() bool {
		_, err := os.Stat(filepath.Join(p.home, "server.json"))
		return err == nil
	})
}

func TestJob_StartFollowAndInspect(t *testing.T) {
	p := newProject(t)
	p.setup("demo", "greeting=hi")
	id := strings.TrimSpace(readFile(t, p.path(".cliq", "cliq.id")))
	startServer(t, p)

	r := p.run("job", "start", id, "--follow")
	if r.code != 0 {
		t.Fatalf("job start --follow exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"Started run run_", "phase left started", "verdict ROUTE", "verdict PASS", "completed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("followed output lacks %q:\n%s", want, r.stdout)
		}
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "completed") {
		t.Errorf("last followed line %q, want the completion", last)
	}

	status := p.mustRun("job", "status", id)
	if !strings.Contains(status.stdout, "completed") || !strings.Contains(status.stdout, "@testdata/demo") {
		t.Errorf("job status output:\n%s", status.stdout)
	}
	list := p.mustRun("job", "list")
	if !strings.Contains(list.stdout, id) || !strings.Contains(list.stdout, "completed") {
		t.Errorf("job list output:\n%s", list.stdout)
	}
	phases := p.mustRun("job", "phases", id)
	for _, name := range []string{"prepare", "left", "right", "check", "report"} {
		if !strings.Contains(phases.stdout, name) {
			t.Errorf("job phases output lacks %s:\n%s", name, phases.stdout)
		}
	}
	log := p.mustRun("job", "log", id, "--tail", "2")
	if n := len(strings.Split(strings.TrimSpace(log.stdout), "\n")); n != 2 {
		t.Errorf("job log --tail 2 printed %d lines:\n%s", n, log.stdout)
	}
	if r := p.run("job", "cancel", id); r.code != 1 || !strings.Contains(r.stderr, "nothing to cancel") {
		t.Errorf("cancel of a finished run: exit %d, stderr %q; want 1 and 'nothing to cancel'", r.code, r.stderr)
	}
}

func TestJob_FollowExitsWithRunCode(t *testing.T) {
	p := newProject(t)
	p.setup("escalate")
	id := strings.TrimSpace(readFile(t, p.path(".cliq", "cliq.id")))
	startServer(t, p)

	r := p.run("job", "start", id, "--follow")
	if r.code != 3 {
		t.Fatalf("job start --follow of an escalating run exited %d, want 3\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "escalated") {
		t.Errorf("followed output does not report the escalation:\n%s", r.stdout)
	}
}

func TestJob_ClientErrors(t *testing.T) {
	p := newProject(t)
	p.mustRun("init")
	if r := p.run("job", "status", "cliq-000000"); r.code != 1 || !strings.Contains(r.stderr, "cliq server start") {
		t.Errorf("job status without a server: exit %d, stderr %q; want 1 and a hint to start one", r.code, r.stderr)
	}
	startServer(t, p)
	if r := p.run("job", "status", "cliq-000000"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("job status of an unknown instance: exit %d, stderr %q; want 1 and the 404", r.code, r.stderr)
	}
	if r := p.run("job", "status", "cliq-000000", "--token", "cliq_sk_wrong"); r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Errorf("job status with a wrong token: exit %d, stderr %q; want 1 and the 401", r.code, r.stderr)
	}
	if r := p.run("job", "start"); r.code != 2 {
		t.Errorf("job start without an instance exited %d, want 2", r.code)
	}
	if r := p.run("job", "start", "x", "--settings", "[1]"); r.code != 2 {
		t.Errorf("job start with a non-object --settings exited %d, want 2", r.code)
	}
	if r := p.run("job", "log", "x", "--tail", "-1"); r.code != 2 {
		t.Errorf("job log --tail -1 exited %d, want 2", r.code)
	}
}

func TestJob_FollowInterruptLeavesRunGoing(t *testing.T) {
	p := newProject(t)
	p.setup("slow")
	id := strings.TrimSpace(readFile(t, p.path(".cliq", "cliq.id")))
	startServer(t, p)

	cmd := p.command("job", "start", id, "--follow")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, 20*time.Second, "the hang phase to start", func() bool {
		return strings.Contains(out.String(), "phase hang started")
	})
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("job start --follow did not stop within 10 s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d after SIGINT, want 130; output:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "cliq job cancel") {
		t.Errorf("output does not say how to cancel the run:\n%s", out.String())
	}

	if status := p.mustRun("job", "status", id); !strings.Contains(status.stdout, "running") {
		t.Errorf("the run stopped with the follower:\n%s", status.stdout)
	}
	p.mustRun("job", "cancel", id)
	waitFor(t, 30*time.Second, "the run to be cancelled", func() bool {
		return p.state().Status == "cancelled"
	})
}
