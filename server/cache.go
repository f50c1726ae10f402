package server

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"cliq/pipeline"
	"cliq/store"
)

// cacheTTL is how long a registry lookup and a project check are reused.
// Other processes (cliq init, cliq clean) change the registry, so an entry
// they change may be seen up to this late.
const cacheTTL = time.Second

// instanceCache keeps recent registry lookups, project checks and the
// instance list, so that the read endpoints do not query the database and
// the file system (and parse every team.yml) on every request.
type instanceCache struct {
	mu      sync.Mutex
	entries map[string]instanceEntry

	// listBody is the last encoded /instances/list/ response, reused
	// until listExpires; forget drops it along with the entry.
	listBody    []byte
	listExpires time.Time
}

type instanceEntry struct {
	inst    store.Instance
	problem error // checkProjectDir's result
	expires time.Time
}

func newInstanceCache() *instanceCache {
	return &instanceCache{entries: make(map[string]instanceEntry)}
}

// get returns a fresh entry for id.
func (c *instanceCache) get(id string) (instanceEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || time.Now().After(e.expires) {
		return instanceEntry{}, false
	}
	return e, true
}

// put stores inst with the result of checking its project directory now.
func (c *instanceCache) put(inst store.Instance) instanceEntry {
	e := instanceEntry{inst: inst, problem: checkProjectDir(inst), expires: time.Now().Add(cacheTTL)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[inst.ID] = e
	if len(c.entries) > 4096 {
		c.evictExpired()
	}
	return e
}

// forget drops the entry of id, after a change made by this server.
func (c *instanceCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
	c.listBody = nil
}

// list returns the cached /instances/list/ response while it is fresh.
func (c *instanceCache) list() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listBody == nil || time.Now().After(c.listExpires) {
		return nil, false
	}
	return c.listBody, true
}

// putList stores an encoded /instances/list/ response for cacheTTL.
func (c *instanceCache) putList(body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listBody = body
	c.listExpires = time.Now().Add(cacheTTL)
}

func (c *instanceCache) evictExpired() {
	now := time.Now()
	for id, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, id)
		}
	}
}

// stateCache keeps the last parsed run.json of each project and reuses it
// while the file's modification time and size are unchanged. The engine
// replaces run.json by a rename on every change, so a change always shows
// in the modification time.
type stateCache struct {
	mu      sync.Mutex
	entries map[string]stateEntry
}

type stateEntry struct {
	modTime time.Time
	size    int64
	state   pipeline.RunState
}

func newStateCache() *stateCache {
	return &stateCache{entries: make(map[string]stateEntry)}
}

// read returns the run state of the project. The returned value is a copy
// whose Phases slice must not be modified.
func (c *stateCache) read(projectDir string) (*pipeline.RunState, error) {
	info, err := os.Stat(filepath.Join(projectDir, ".cliq", "run.json"))
	if err != nil {
		return pipeline.ReadState(projectDir)
	}
	c.mu.Lock()
	e, ok := c.entries[projectDir]
	c.mu.Unlock()
	if ok && e.modTime.Equal(info.ModTime()) && e.size == info.Size() {
		st := e.state
		return &st, nil
	}

	st, err := pipeline.ReadState(projectDir)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[projectDir] = stateEntry{modTime: info.ModTime(), size: info.Size(), state: *st}
	c.mu.Unlock()
	return st, nil
}
