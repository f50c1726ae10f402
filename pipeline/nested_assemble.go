package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stageSubTeams copies, for every team phase of t that names its sub-team
// by path, that sub-team into stage/subteams/<phase>/, with its own
// path-named sub-teams below it. chain holds the names of the teams from
// the assembled one down to t, so that a team including itself by path is
// rejected with ErrTeamCycle instead of being copied forever. Sub-teams
// named "@scope/name" or by a bare name are not copied: they are looked up
// when the run starts.
func stageSubTeams(stage string, t *Team, chain []string) error {
	for i := range t.Workflow.Phases {
		ph := &t.Workflow.Phases[i]
		if ph.Type != TypeTeam || !isPathTeamRef(ph.Team) {
			continue
		}
		sub, dir, err := loadSubTeam(t, ph, chain, resolveTeamPath)
		if err != nil {
			return err
		}
		dst := filepath.Join(stage, SubTeamsDirName, ph.Name)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := stageTeam(dst, dir); err != nil {
			return fmt.Errorf("copy sub-team %s of phase %q: %w", sub.Name, ph.Name, err)
		}
		if err := stageSubTeams(dst, sub, append(chain[:len(chain):len(chain)], sub.Name)); err != nil {
			return err
		}
	}
	return nil
}

// resolveTeamPath is the TeamResolver for path references only: ref is a
// directory, relative to base unless absolute, that contains team.yml.
func resolveTeamPath(base, ref string) (string, error) {
	dir := ref
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	if !isTeamDir(dir) {
		return "", fmt.Errorf("%w: %s has no %s (the path is read from the directory of the team that names it)",
			ErrTeamNotFound, ref, TeamFileName)
	}
	return dir, nil
}

// swapSubTeams replaces cliqDir/subteams with stage/subteams, or removes
// it when the new team copies no sub-team.
func swapSubTeams(cliqDir, stage string) error {
	current := filepath.Join(cliqDir, SubTeamsDirName)
	old := filepath.Join(stage, "old-"+SubTeamsDirName)
	hadOld := true
	if err := os.Rename(current, old); errors.Is(err, fs.ErrNotExist) {
		hadOld = false
	} else if err != nil {
		return err
	}
	err := os.Rename(filepath.Join(stage, SubTeamsDirName), current)
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return nil
	case hadOld:
		_ = os.Rename(old, current)
	}
	return err
}
