package pipeline

import (
	"context"
	"testing"
)

// BenchmarkPipeline_Run measures a whole run of a one-phase exec team:
// Open, the run lock, the event server, one sh -c process and the files.
func BenchmarkPipeline_Run(b *testing.B) {
	dir := MustProject(b, testProject{team: minimalTeam})
	for b.Loop() {
		p, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		st, err := p.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Status != StatusCompleted {
			b.Fatalf("status = %s (%s)", st.Status, st.Reason)
		}
	}
}
