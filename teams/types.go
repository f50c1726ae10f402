package teams

// Summary describes one team of the library, as /teams/list/ returns it.
type Summary struct {
	// Name is @scope/name for built-in and installed teams, and the name
	// in team.yml for the project's team.
	Name        string `json:"name"`
	Scope       string `json:"scope"`
	Description string `json:"description"`
	Version     string `json:"version"`
	PhaseCount  int    `json:"phase_count"`
	Builtin     bool   `json:"builtin"`
	// Error is set when team.yml cannot be read or is not a valid team;
	// the other fields then hold what could be read.
	Error string `json:"error,omitempty"`
	// Path is the team directory on disk, empty for a built-in team. It is
	// kept out of JSON so that API responses do not show server paths.
	Path string `json:"-"`
}

// Detail describes one team with its phases, as /teams/get/ returns it.
type Detail struct {
	Summary
	Inputs  []Param       `json:"inputs"`
	Outputs []Param       `json:"outputs"`
	UseWhen []string      `json:"use_when"`
	NotFor  []string      `json:"not_for"`
	Phases  []PhaseDetail `json:"phases"`
}

// Param is a declared input or output of a team.
type Param struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// PhaseDetail describes one phase. Agent is empty when the phase uses the
// default_agent setting. Role and RoleText are empty for phases that need
// no role file (agent exec); RoleText is empty as well when the file is
// missing.
type PhaseDetail struct {
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	Agent         string            `json:"agent"`
	Role          string            `json:"role"`
	RoleText      string            `json:"role_text"`
	DependsOn     []string          `json:"depends_on"`
	Commands      []CommandDetail   `json:"commands"`
	MaxIterations int               `json:"max_iterations,omitempty"`
	RouteTo       string            `json:"route_to,omitempty"`
	Team          string            `json:"team,omitempty"`
	TeamInputs    map[string]string `json:"inputs,omitempty"`
}

// CommandDetail is one shell command of a phase.
type CommandDetail struct {
	Name           string `json:"name"`
	Run            string `json:"run"`
	If             string `json:"if,omitempty"`
	EscalateOnFail bool   `json:"escalate_on_fail,omitempty"`
	Timeout        string `json:"timeout,omitempty"`
}

// ValidationResult is the outcome of Validate, as /teams/validate/ returns
// it. Errors is empty, never null, when Valid is true.
type ValidationResult struct {
	Name   string            `json:"name"`
	Valid  bool              `json:"valid"`
	Errors []ValidationError `json:"errors"`
}

// ValidationError is one problem of a team definition. File is relative to
// the team directory (team.yml, or a role file); Line is 0 when unknown;
// Phase is empty for problems outside the phases.
type ValidationError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Phase   string `json:"phase"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// InstallResult is the outcome of Install. PreviousVersion is the version
// of the team that was replaced, when Replaced is true.
type InstallResult struct {
	Summary
	Replaced        bool   `json:"replaced"`
	PreviousVersion string `json:"previous_version,omitempty"`
}
