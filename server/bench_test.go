package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"cliq/events"
	"cliq/pipeline"
)

// BenchmarkJobsGet measures authenticated POST /jobs/get/ over loopback
// HTTP against a bare net/http handler that returns the same JSON bytes.
// The ratio of the two ns/op values is the API's overhead.
func BenchmarkJobsGet(b *testing.B) {
	s, db := newTestServer(b, nil)
	startTestServer(b, s)
	inst := newProject(b, db, "demo", "x", map[string]string{"greeting": "hi"})
	now := time.Now().UTC()
	st := &pipeline.RunState{InstanceID: inst.ID, RunID: newRunID(), Status: pipeline.StatusCompleted,
		Team: "@testdata/demo", StartedAt: now, FinishedAt: &now, Phases: []pipeline.PhaseState{}}
	if err := writeRunState(inst.ProjectDir, st); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"instance_id":"` + inst.ID + `"}`)

	// The bare handler returns exactly what the server returns.
	want := postBench(b, http.DefaultClient, s.URL()+"/jobs/get/", body)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(want)
	}))
	defer bare.Close()

	b.Run("cliq", func(b *testing.B) { benchPost(b, s.URL()+"/jobs/get/", body) })
	b.Run("bare", func(b *testing.B) { benchPost(b, bare.URL+"/jobs/get/", body) })
}

// BenchmarkInstancesList measures authenticated POST /instances/list/ with
// 100 registered instances against a bare handler returning the same JSON.
func BenchmarkInstancesList(b *testing.B) {
	s, db := newTestServer(b, nil)
	startTestServer(b, s)
	for range 100 {
		newProject(b, db, "demo", "x", map[string]string{"greeting": "hi"})
	}
	body := []byte(`{}`)

	want := postBench(b, http.DefaultClient, s.URL()+"/instances/list/", body)
	if n := bytes.Count(want, []byte(`"project_dir"`)); n != 100 {
		b.Fatalf("/instances/list/ returned %d instances, want 100", n)
	}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(want)
	}))
	defer bare.Close()

	b.Run("cliq", func(b *testing.B) { benchPost(b, s.URL()+"/instances/list/", body) })
	b.Run("bare", func(b *testing.B) { benchPost(b, bare.URL+"/instances/list/", body) })
}

// benchPost posts body to url from parallel clients with keep-alive.
func benchPost(b *testing.B, url string, body []byte) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			postBench(b, client, url, body)
		}
	})
}

func postBench(b *testing.B, client *http.Client, url string, body []byte) []byte {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Errorf("POST %s: status %d, error %v", url, resp.StatusCode, err)
	}
	return data
}

// BenchmarkCreateToFirstEvent measures the time from POST /jobs/create/ to
// the pipeline_start frame at a WebSocket subscriber, through the real
// binary (a server and one orchestrator process per run). It reports the
// median as ms/median; ns/op includes waiting for each run to end.
func BenchmarkCreateToFirstEvent(b *testing.B) {
	env := newCliqEnv(b)
	_, id := env.project(b, demoTeam(b), "-m", "say hi", "--input", "greeting=hi")
	srv := env.startServer(b)
	ws := srv.dial(b, "/")
	subscribe(b, ws, events.JobChannel(id), -1)

	var delays []time.Duration
	for b.Loop() {
		start := time.Now()
		var created map[string]string
		mustCall(b, srv, "/jobs/create/", map[string]any{"instance_id": id}, &created, http.StatusAccepted)
		for {
			m := readMessage(b, ws)
			if m.RunID == created["run_id"] && m.Type == events.PipelineStart {
				delays = append(delays, time.Since(start))
				break
			}
		}
		readRun(b, ws, created["run_id"])
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "ms/median")
}
