package pipeline

// Phase types understood by the engine. The older spelling "exec" is read as
// a standard phase with agent "exec".
const (
	TypeStandard = "standard"
	TypeGate     = "gate"
	TypeTeam     = "team"
)

// AgentExec is the built-in agent that runs a phase's commands with sh -c.
const AgentExec = "exec"

// Team is a parsed team.yml.
type Team struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Version     string   `yaml:"version"`
	Inputs      []Input  `yaml:"inputs"`
	UseWhen     []string `yaml:"use_when"`
	NotFor      []string `yaml:"not_for"`
	Workflow    Workflow `yaml:"workflow"`

	// CliqVersion, Tools, Tags and Outputs are documented team metadata.
	// They are parsed so that published teams load, but the engine does not
	// act on them.
	CliqVersion string   `yaml:"cliq_version"`
	Tools       []string `yaml:"tools"`
	Tags        []string `yaml:"tags"`
	Outputs     []Output `yaml:"outputs"`

	// Dir is the directory team.yml was read from; roles live in Dir/roles.
	Dir string `yaml:"-"`

	// pos holds the team.yml lines of the top-level fields, for messages;
	// nil for a team built in Go.
	pos *teamPos
}

// Input is a value the requirement must supply, referenced as $(inputs.name).
type Input struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Output describes a result of the team, for documentation and routing.
type Output struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Workflow holds the phases of a team in file order.
type Workflow struct {
	Phases []Phase `yaml:"phases"`
}

// Phase is one step of the workflow DAG.
type Phase struct {
	Name          string            `yaml:"name"`
	Type          string            `yaml:"type"`
	Agent         string            `yaml:"agent"`
	Role          string            `yaml:"role"`
	DependsOn     []string          `yaml:"depends_on"`
	Commands      []Command         `yaml:"commands"`
	MaxIterations int               `yaml:"max_iterations"`
	RouteTo       string            `yaml:"route_to"`
	Team          string            `yaml:"team"`
	TeamInputs    map[string]string `yaml:"inputs"`
	// Model is a per-phase model override for AI agents. It is parsed but
	// not passed to agents yet.
	Model string `yaml:"model"`

	// pos holds the team.yml lines of the phase and its fields, for
	// messages; nil for a phase built in Go.
	pos *phasePos
}

// Command is one shell command of an exec phase or a gate.
type Command struct {
	Name           string `yaml:"name"`
	Run            string `yaml:"run"`
	If             string `yaml:"if"`
	EscalateOnFail bool   `yaml:"escalate_on_fail"`
	// Timeout is a Go duration such as "30s"; empty means the default of
	// two minutes.
	Timeout string `yaml:"timeout"`
}
