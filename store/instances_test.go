package store_test

import (
	"errors"
	"testing"

	"cliq/store"
	"cliq/store/storetest"
)

func TestDB_PutInstance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)

		t.Run("OK", func(t *testing.T) {
			want := store.Instance{ID: "cliq-a1b2c3", Name: "app", ProjectDir: "/p/app", CreatedAt: at(0), UpdatedAt: at(0)}
			mustPutInstance(t, db, want)
			got, err := db.Instance(ctx, want.ID)
			if err != nil {
				t.Fatalf("Instance: %v", err)
			}
			if got != want {
				t.Errorf("Instance() = %+v, want %+v", got, want)
			}
		})

		t.Run("UpdateKeepsCreatedAt", func(t *testing.T) {
			mustPutInstance(t, db, store.Instance{ID: "cliq-000001", Name: "old", ProjectDir: "/p/old", CreatedAt: at(0), UpdatedAt: at(0)})
			mustPutInstance(t, db, store.Instance{ID: "cliq-000001", Name: "new", ProjectDir: "/p/new", CreatedAt: at(50), UpdatedAt: at(60)})
			got, err := db.Instance(ctx, "cliq-000001")
			if err != nil {
				t.Fatalf("Instance: %v", err)
			}
			if got.Name != "new" || got.ProjectDir != "/p/new" {
				t.Errorf("Instance() name, dir = %q, %q, want new, /p/new", got.Name, got.ProjectDir)
			}
			if !got.CreatedAt.Equal(at(0)) {
				t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, at(0))
			}
			if !got.UpdatedAt.Equal(at(60)) {
				t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, at(60))
			}
		})

		t.Run("ZeroTimesMeanNow", func(t *testing.T) {
			mustPutInstance(t, db, store.Instance{ID: "cliq-000002", Name: "n", ProjectDir: "/p/n"})
			got, err := db.Instance(ctx, "cliq-000002")
			if err != nil {
				t.Fatalf("Instance: %v", err)
			}
			if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
				t.Errorf("times not set: %+v", got)
			}
		})

		t.Run("ErrInvalid", func(t *testing.T) {
			for _, inst := range []store.Instance{{ProjectDir: "/p"}, {ID: "cliq-000003"}} {
				if err := db.PutInstance(ctx, inst); !errors.Is(err, store.ErrInvalid) {
					t.Errorf("PutInstance(%+v) error = %v, want ErrInvalid", inst, err)
				}
			}
		})
	})
}

func TestDB_Instance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		_, err := db.Instance(testContext(t), "cliq-missing")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Instance(missing) error = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_Instances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		got, err := db.Instances(ctx)
		if err != nil {
			t.Fatalf("Instances on empty store: %v", err)
		}
		if got == nil || len(got) != 0 {
			t.Errorf("Instances() on empty store = %#v, want an empty slice", got)
		}

		// Insert out of order; ties on created_at fall back to id.
		mustPutInstance(t, db, store.Instance{ID: "cliq-c", ProjectDir: "/c", CreatedAt: at(2)})
		mustPutInstance(t, db, store.Instance{ID: "cliq-b", ProjectDir: "/b", CreatedAt: at(1)})
		mustPutInstance(t, db, store.Instance{ID: "cliq-a", ProjectDir: "/a", CreatedAt: at(2)})
		mustPutInstance(t, db, store.Instance{ID: "cliq-d", ProjectDir: "/d", CreatedAt: at(1).Add(500000)})

		got, err = db.Instances(ctx)
		if err != nil {
			t.Fatalf("Instances: %v", err)
		}
		var ids []string
		for _, inst := range got {
			ids = append(ids, inst.ID)
		}
		want := []string{"cliq-b", "cliq-d", "cliq-a", "cliq-c"}
		if len(ids) != len(want) {
			t.Fatalf("Instances() ids = %v, want %v", ids, want)
		}
		for i := range want {
			if ids[i] != want[i] {
				t.Errorf("Instances() ids = %v, want %v", ids, want)
				break
			}
		}
	})
}

func TestDB_RemoveInstance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)

		t.Run("OK", func(t *testing.T) {
			mustPutInstance(t, db, store.Instance{ID: "cliq-rm0001", ProjectDir: "/p"})
			if err := db.PutRun(ctx, store.Run{RunID: "run_1", InstanceID: "cliq-rm0001", Status: "completed"}); err != nil {
				t.Fatalf("PutRun: %v", err)
			}
			if err := db.RemoveInstance(ctx, "cliq-rm0001"); err != nil {
				t.Fatalf("RemoveInstance: %v", err)
			}
			if _, err := db.Instance(ctx, "cliq-rm0001"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Instance after remove: error = %v, want ErrNotFound", err)
			}
			runs, err := db.Runs(ctx, "cliq-rm0001", 0)
			if err != nil {
				t.Fatalf("Runs: %v", err)
			}
			if len(runs) != 0 {
				t.Errorf("runs of a removed instance remain: %+v", runs)
			}
		})

		t.Run("ErrNotFound", func(t *testing.T) {
			if err := db.RemoveInstance(ctx, "cliq-missing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RemoveInstance(missing) error = %v, want ErrNotFound", err)
			}
		})
	})
}
