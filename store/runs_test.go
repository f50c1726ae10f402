package store_test

import (
	"errors"
	"testing"

	"cliq/store"
	"cliq/store/storetest"
)

func TestDB_PutRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		mustPutInstance(t, db, store.Instance{ID: "cliq-run001", ProjectDir: "/p"})

		t.Run("InsertThenFinish", func(t *testing.T) {
			run := store.Run{RunID: "run_a", InstanceID: "cliq-run001", Team: "@acme/web", Status: "running", StartedAt: at(0)}
			if err := db.PutRun(ctx, run); err != nil {
				t.Fatalf("PutRun(running): %v", err)
			}
			finished := at(30)
			run.Status, run.Reason, run.FinishedAt = "failed", "gate review escalated", &finished
			if err := db.PutRun(ctx, run); err != nil {
				t.Fatalf("PutRun(failed): %v", err)
			}

			runs, err := db.Runs(ctx, "cliq-run001", 0)
			if err != nil {
				t.Fatalf("Runs: %v", err)
			}
			if len(runs) != 1 {
				t.Fatalf("Runs() returned %d runs, want 1: %+v", len(runs), runs)
			}
			got := runs[0]
			if got.Status != "failed" || got.Reason != "gate review escalated" || got.Team != "@acme/web" {
				t.Errorf("run = %+v, want status failed with the reason and team", got)
			}
			if !got.StartedAt.Equal(at(0)) {
				t.Errorf("StartedAt = %v, want %v", got.StartedAt, at(0))
			}
			if got.FinishedAt == nil || !got.FinishedAt.Equal(finished) {
				t.Errorf("FinishedAt = %v, want %v", got.FinishedAt, finished)
			}
		})

		t.Run("UnknownInstance", func(t *testing.T) {
			err := db.PutRun(ctx, store.Run{RunID: "run_x", InstanceID: "cliq-missing", Status: "running"})
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("PutRun(unknown instance) error = %v, want ErrNotFound", err)
			}
		})

		t.Run("ErrInvalid", func(t *testing.T) {
			err := db.PutRun(ctx, store.Run{InstanceID: "cliq-run001"})
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("PutRun(no run id) error = %v, want ErrInvalid", err)
			}
		})
	})
}

func TestDB_Runs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		mustPutInstance(t, db, store.Instance{ID: "cliq-one", ProjectDir: "/one"})
		mustPutInstance(t, db, store.Instance{ID: "cliq-two", ProjectDir: "/two"})
		for i, id := range []string{"run_1", "run_2", "run_3"} {
			if err := db.PutRun(ctx, store.Run{RunID: id, InstanceID: "cliq-one", Status: "completed", StartedAt: at(i)}); err != nil {
				t.Fatalf("PutRun(%s): %v", id, err)
			}
		}
		if err := db.PutRun(ctx, store.Run{RunID: "run_9", InstanceID: "cliq-two", Status: "running", StartedAt: at(10)}); err != nil {
			t.Fatalf("PutRun(run_9): %v", err)
		}

		tests := []struct {
			name     string
			instance string
			limit    int
			want     []string
		}{
			{"NewestFirst", "cliq-one", 0, []string{"run_3", "run_2", "run_1"}},
			{"Limit", "cliq-one", 2, []string{"run_3", "run_2"}},
			{"OtherInstance", "cliq-two", 0, []string{"run_9"}},
			{"AllInstances", "", 0, []string{"run_9", "run_3", "run_2", "run_1"}},
			{"Unknown", "cliq-missing", 5, []string{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				runs, err := db.Runs(ctx, tt.instance, tt.limit)
				if err != nil {
					t.Fatalf("Runs: %v", err)
				}
				got := []string{}
				for _, r := range runs {
					got = append(got, r.RunID)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("Runs(%q, %d) = %v, want %v", tt.instance, tt.limit, got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("Runs(%q, %d) = %v, want %v", tt.instance, tt.limit, got, tt.want)
						break
					}
				}
			})
		}
	})
}
