package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File and directory names of a team definition.
const (
	// TeamFileName is the workflow file of a team directory.
	TeamFileName = "team.yml"
	// RolesDirName is the directory of role files inside a team directory.
	RolesDirName = "roles"
)

// DefaultMaxIterations is the iteration budget of a gate that sets none.
const DefaultMaxIterations = 3

var (
	// ErrInvalidTeam is wrapped by every *DefinitionError, so callers can
	// test for a bad team definition with errors.Is.
	ErrInvalidTeam = errors.New("invalid team definition")
	// ErrTeamNotFound means a team reference names no directory with a
	// team.yml.
	ErrTeamNotFound = errors.New("team not found")
)

// FieldError is one problem in a team definition. Phase is empty for
// problems outside the phases, and Line is 0 when the position is unknown.
type FieldError struct {
	File    string
	Line    int
	Phase   string
	Field   string
	Message string
}

// Error formats the problem as `team.yml:12: phase "x": depends_on: message`.
func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Phase != "" {
		fmt.Fprintf(&b, ": phase %q", e.Phase)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

// DefinitionError lists every problem found in one team definition.
type DefinitionError struct {
	File   string
	Errors []FieldError
}

// Error returns the single problem, or a count followed by one problem a
// line.
func (e *DefinitionError) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", e.File, len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n  " + fe.Error())
	}
	return b.String()
}

// Unwrap returns ErrInvalidTeam.
func (e *DefinitionError) Unwrap() error { return ErrInvalidTeam }

// LoadTeam reads dir/team.yml, normalizes it and validates it, looking up
// role files in dir/roles/<role>.md. A missing team.yml wraps
// ErrTeamNotFound, and a bad definition is a *DefinitionError listing every
// problem. Team.Dir is set to dir.
func LoadTeam(dir string) (*Team, error) {
	path := filepath.Join(dir, TeamFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s in %s (pass a team directory or an installed @scope/name)",
			ErrTeamNotFound, TeamFileName, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read team: %w", err)
	}

	t, errs := parseTeam(path, data)
	if len(errs) == 0 {
		errs = t.Validate(filepath.Join(dir, RolesDirName))
		setFile(errs, path)
	}
	if len(errs) > 0 {
		return nil, &DefinitionError{File: path, Errors: errs}
	}
	t.Dir = dir
	return t, nil
}

// ParseTeam parses and normalizes team.yml content and validates it without
// looking at role files. file names the source in messages only.
func ParseTeam(file string, data []byte) (*Team, error) {
	t, errs := parseTeam(file, data)
	if len(errs) == 0 {
		errs = t.Validate("")
		setFile(errs, file)
	}
	if len(errs) > 0 {
		return nil, &DefinitionError{File: file, Errors: errs}
	}
	return t, nil
}

// setFile fills in the file name of errors produced by Validate.
func setFile(errs []FieldError, file string) {
	for i := range errs {
		if errs[i].File == "" {
			errs[i].File = file
		}
	}
}

// parseTeam decodes data strictly and normalizes the result. It returns the
// syntax, unknown-field and type problems but does not run Validate.
func parseTeam(file string, data []byte) (*Team, []FieldError) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []FieldError{yamlError(file, err)}
	}
	if len(root.Content) == 0 {
		return nil, []FieldError{{File: file, Message: "file is empty (expected name and workflow.phases)"}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, []FieldError{{File: file, Line: doc.Line,
			Message: "expected a mapping with name and workflow at the top level"}}
	}

	errs := checkFields(file, doc)
	var t Team
	if err := doc.Decode(&t); err != nil {
		errs = append(errs, decodeErrors(file, doc, err)...)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	errs = checkRaw(file, doc, &t)
	if len(errs) > 0 {
		return nil, errs
	}
	t.recordLines(doc)
	t.normalize()
	return &t, nil
}

// nodeLines records where a mapping starts in team.yml and where the value
// of each of its keys is.
type nodeLines struct {
	at   int
	keys map[string]int
}

// teamPos records the team.yml lines of a team's top-level fields.
type teamPos struct {
	nodeLines
	// phases is the line of workflow.phases, or of workflow.
	phases  int
	inputs  []nodeLines
	outputs []nodeLines
}

// phasePos records the team.yml lines of a phase and its fields.
type phasePos struct {
	nodeLines
	dependsOn []int
	commands  []nodeLines
	// inputs contains the lines of the values of a team phase's inputs.
	inputs nodeLines
}

// linesOf returns the lines of mapping m: its own line and, for each key,
// the line of a scalar value or, for a block value, of the key itself.
func linesOf(m *yaml.Node) nodeLines {
	l := nodeLines{keys: map[string]int{}}
	if m == nil {
		return l
	}
	l.at = m.Line
	if m.Kind != yaml.MappingNode {
		return l
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		if val.Kind == yaml.ScalarNode || val.Style&yaml.FlowStyle != 0 {
			l.keys[key.Value] = val.Line
		} else {
			l.keys[key.Value] = key.Line
		}
	}
	return l
}

// line returns the line of the value of key, else the line of the mapping,
// or 0 when l records nothing.
func (l *nodeLines) line(key string) int {
	if l == nil {
		return 0
	}
	if n := l.keys[key]; n > 0 {
		return n
	}
	return l.at
}

// itemLines returns linesOf each item of the sequence under key in m.
func itemLines(m *yaml.Node, key string) []nodeLines {
	seq := mappingValue(m, key)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]nodeLines, len(seq.Content))
	for i, n := range seq.Content {
		out[i] = linesOf(n)
	}
	return out
}

// recordLines stores the lines of doc's fields in t and in each phase, so
// that Validate can name the line of a problem. It expects t to be decoded
// from doc.
func (t *Team) recordLines(doc *yaml.Node) {
	t.pos = &teamPos{nodeLines: linesOf(doc), inputs: itemLines(doc, "inputs"), outputs: itemLines(doc, "outputs")}
	t.pos.phases = t.pos.line("workflow")
	if wf := mappingValue(doc, "workflow"); wf != nil {
		wfl := linesOf(wf)
		if n := wfl.keys["phases"]; n > 0 {
			t.pos.phases = n
		}
	}
	for i, pn := range phaseNodes(doc) {
		if i >= len(t.Workflow.Phases) {
			break
		}
		pos := &phasePos{nodeLines: linesOf(pn), commands: itemLines(pn, "commands"),
			inputs: linesOf(mappingValue(pn, "inputs"))}
		if deps := mappingValue(pn, "depends_on"); deps != nil && deps.Kind == yaml.SequenceNode {
			for _, d := range deps.Content {
				pos.dependsOn = append(pos.dependsOn, d.Line)
			}
		}
		t.Workflow.Phases[i].pos = pos
	}
}

// line returns the team.yml line of top-level key, else of the document,
// or 0 for a team built in Go.
func (t *Team) line(key string) int {
	if t.pos == nil {
		return 0
	}
	return t.pos.line(key)
}

// phasesLine returns the line of workflow.phases, else of workflow, else
// of the document.
func (t *Team) phasesLine() int {
	if t.pos == nil {
		return 0
	}
	if t.pos.phases > 0 {
		return t.pos.phases
	}
	return t.pos.at
}

// itemLine returns the line of key in item i of items, else of the item,
// else fallback.
func itemLine(items []nodeLines, i int, key string, fallback int) int {
	if i < 0 || i >= len(items) {
		return fallback
	}
	if n := items[i].line(key); n > 0 {
		return n
	}
	return fallback
}

// inputLine returns the line of key in inputs[i] of the team.
func (t *Team) inputLine(i int, key string) int {
	if t.pos == nil {
		return 0
	}
	return itemLine(t.pos.inputs, i, key, t.pos.line("inputs"))
}

// outputLine returns the line of key in outputs[i] of the team.
func (t *Team) outputLine(i int, key string) int {
	if t.pos == nil {
		return 0
	}
	return itemLine(t.pos.outputs, i, key, t.pos.line("outputs"))
}

// line returns the team.yml line of the phase's key, else of the phase,
// or 0 for a phase built in Go.
func (p *Phase) line(key string) int {
	if p.pos == nil {
		return 0
	}
	return p.pos.line(key)
}

// dependsOnLine returns the line of entry i of depends_on, else of
// depends_on, else of the phase.
func (p *Phase) dependsOnLine(i int) int {
	if p.pos != nil && i >= 0 && i < len(p.pos.dependsOn) {
		return p.pos.dependsOn[i]
	}
	return p.line("depends_on")
}

// commandLine returns the line of key in commands[i], else of the
// command, else of commands, else of the phase.
func (p *Phase) commandLine(i int, key string) int {
	if p.pos == nil {
		return 0
	}
	return itemLine(p.pos.commands, i, key, p.line("commands"))
}

// teamInputLine returns the line of the value of key in the team phase's
// inputs, else of inputs, else of the phase.
func (p *Phase) teamInputLine(key string) int {
	if p.pos == nil {
		return 0
	}
	if n := p.pos.inputs.keys[key]; n > 0 {
		return n
	}
	return p.line("inputs")
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a YAML syntax error into a FieldError with its line.
func yamlError(file string, err error) FieldError {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return FieldError{File: file, Line: line, Message: "invalid YAML: " + m[2]}
	}
	return FieldError{File: file, Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var typeErrorRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeErrors converts the type errors of a decode into FieldErrors,
// locating the phase and field of each from its line.
func decodeErrors(file string, doc *yaml.Node, err error) []FieldError {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []FieldError{{File: file, Message: err.Error()}}
	}
	out := make([]FieldError, 0, len(te.Errors))
	for _, msg := range te.Errors {
		fe := FieldError{File: file, Message: msg}
		if m := typeErrorRE.FindStringSubmatch(msg); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Message = strings.Replace(m[2], "cannot unmarshal", "invalid value: cannot decode", 1)
			fe.Phase, fe.Field = locate(doc, fe.Line)
		}
		out = append(out, fe)
	}
	return out
}

// locate returns the phase name and the top-level key of that phase (or of
// the document) whose value covers line.
func locate(doc *yaml.Node, line int) (phase, field string) {
	for _, pn := range phaseNodes(doc) {
		if line >= pn.Line && line <= lastLine(pn) {
			return scalarValue(pn, "name"), keyAtLine(pn, line)
		}
	}
	return "", keyAtLine(doc, line)
}

// lastLine returns the last line on which n or one of its children starts.
func lastLine(n *yaml.Node) int {
	last := n.Line
	for _, c := range n.Content {
		last = max(last, lastLine(c))
	}
	return last
}

// keyAtLine returns the key of mapping m that starts last at or before line.
func keyAtLine(m *yaml.Node, line int) string {
	if m.Kind != yaml.MappingNode {
		return ""
	}
	key := ""
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Line <= line {
			key = m.Content[i].Value
		}
	}
	return key
}

// phaseNodes returns the nodes of workflow.phases, or nil.
func phaseNodes(doc *yaml.Node) []*yaml.Node {
	wf := mappingValue(doc, "workflow")
	if wf == nil {
		return nil
	}
	phases := mappingValue(wf, "phases")
	if phases == nil || phases.Kind != yaml.SequenceNode {
		return nil
	}
	return phases.Content
}

// mappingValue returns the value node of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// scalarValue returns the scalar value of key in mapping m, or "".
func scalarValue(m *yaml.Node, key string) string {
	if v := mappingValue(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// checkFields reports every key that the team structs do not declare, in
// the document, workflow, phases, commands, inputs and outputs.
func checkFields(file string, doc *yaml.Node) []FieldError {
	errs := unknownKeys(file, doc, reflect.TypeFor[Team](), "", "")
	if wf := mappingValue(doc, "workflow"); wf != nil {
		errs = append(errs, unknownKeys(file, wf, reflect.TypeFor[Workflow](), "", "workflow.")...)
	}
	for _, key := range []string{"inputs", "outputs"} {
		if seq := mappingValue(doc, key); seq != nil && seq.Kind == yaml.SequenceNode {
			for i, n := range seq.Content {
				prefix := fmt.Sprintf("%s[%d].", key, i)
				errs = append(errs, unknownKeys(file, n, reflect.TypeFor[Input](), "", prefix)...)
			}
		}
	}
	for _, pn := range phaseNodes(doc) {
		name := scalarValue(pn, "name")
		errs = append(errs, unknownKeys(file, pn, reflect.TypeFor[Phase](), name, "")...)
		cmds := mappingValue(pn, "commands")
		if cmds == nil || cmds.Kind != yaml.SequenceNode {
			continue
		}
		for i, cn := range cmds.Content {
			prefix := fmt.Sprintf("commands[%d].", i)
			errs = append(errs, unknownKeys(file, cn, reflect.TypeFor[Command](), name, prefix)...)
		}
	}
	return errs
}

// unknownHints explains documented fields that this engine rejects.
var unknownHints = map[string]string{
	"agents":  "custom team agents are not supported; configure a command agent in settings.agents instead",
	"support": "support phases are not supported; use a standard phase and a gate's route_to",
	"review":  "human review gates (agent hug) are not supported",
	"notify":  "per-phase notifications are not supported",
}

// unknownKeys reports the keys of mapping m that have no yaml tag in typ.
func unknownKeys(file string, m *yaml.Node, typ reflect.Type, phase, prefix string) []FieldError {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	known := yamlKeys(typ)
	var errs []FieldError
	for i := 0; i+1 < len(m.Content); i += 2 {
		key := m.Content[i]
		if known[key.Value] {
			continue
		}
		names := sortedKeys(known)
		msg := "unknown field (" + didYouMean(key.Value, names) + "known fields: " + strings.Join(names, ", ") + ")"
		if hint, ok := unknownHints[key.Value]; ok {
			msg = "unknown field: " + hint
		}
		errs = append(errs, FieldError{File: file, Line: key.Line, Phase: phase,
			Field: prefix + key.Value, Message: msg})
	}
	return errs
}

// yamlKeys returns the yaml keys declared by the fields of struct type typ.
func yamlKeys(typ reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortErrors orders errors by line, keeping the order of errors on one line.
func sortErrors(errs []FieldError) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

// checkRaw reports what normalize would hide: a max_iterations written in
// the file but below 1 (normalize cannot tell an explicit 0 from a missing
// value), and type exec combined with an agent other than exec.
func checkRaw(file string, doc *yaml.Node, t *Team) []FieldError {
	var errs []FieldError
	for i, pn := range phaseNodes(doc) {
		if i >= len(t.Workflow.Phases) {
			break
		}
		p := &t.Workflow.Phases[i]
		if v := mappingValue(pn, "max_iterations"); v != nil && p.MaxIterations < 1 {
			errs = append(errs, FieldError{File: file, Line: v.Line, Phase: p.Name, Field: "max_iterations",
				Message: fmt.Sprintf("invalid value %d (set 1 or more, or leave it out for the default of %d)",
					p.MaxIterations, DefaultMaxIterations)})
		}
		if p.Type == AgentExec && p.Agent != "" && p.Agent != AgentExec {
			line := pn.Line
			if v := mappingValue(pn, "agent"); v != nil {
				line = v.Line
			}
			errs = append(errs, FieldError{File: file, Line: line, Phase: p.Name, Field: "agent",
				Message: fmt.Sprintf("type exec runs commands without an agent, but agent is %q "+
					"(remove the agent, or set type: standard)", p.Agent)})
		}
	}
	return errs
}

// normalize applies the defaults: type exec becomes a standard phase with
// agent exec, an empty type becomes standard, a gate without an agent uses
// exec, an empty role is the phase name, and a gate without max_iterations
// gets DefaultMaxIterations.
func (t *Team) normalize() {
	for i := range t.Workflow.Phases {
		p := &t.Workflow.Phases[i]
		switch p.Type {
		case "":
			p.Type = TypeStandard
		case AgentExec:
			p.Type = TypeStandard
			if p.Agent == "" {
				p.Agent = AgentExec
			}
		}
		if p.Type == TypeGate && p.Agent == "" {
			p.Agent = AgentExec
		}
		if p.Role == "" {
			p.Role = p.Name
		}
		if p.Type == TypeGate && p.MaxIterations == 0 {
			p.MaxIterations = DefaultMaxIterations
		}
	}
}

// PhaseByName returns the phase called name.
func (t *Team) PhaseByName(name string) (*Phase, bool) {
	for i := range t.Workflow.Phases {
		if t.Workflow.Phases[i].Name == name {
			return &t.Workflow.Phases[i], true
		}
	}
	return nil, false
}

// PhaseNames returns the phase names in file order.
func (t *Team) PhaseNames() []string {
	names := make([]string, len(t.Workflow.Phases))
	for i, p := range t.Workflow.Phases {
		names[i] = p.Name
	}
	return names
}

// NeedsRole reports whether the phase needs a role file: every phase whose
// agent is not exec, including team phases, whose role becomes the
// sub-team's requirement.
func (p *Phase) NeedsRole() bool { return p.Agent != AgentExec }

// RolePath returns the path of the phase's role file in team directory dir.
func RolePath(dir string, p *Phase) string {
	return filepath.Join(dir, RolesDirName, p.Role+".md")
}

// Order returns the phase names in a topological order of depends_on. Among
// phases that are ready at the same time, file order wins. Phases on a
// cycle, which Validate rejects, come last in file order.
func (t *Team) Order() []string {
	done := map[string]bool{}
	var order []string
	for len(order) < len(t.Workflow.Phases) {
		progressed := false
		for _, p := range t.Workflow.Phases {
			if done[p.Name] || !allDone(p.DependsOn, done) {
				continue
			}
			done[p.Name] = true
			order = append(order, p.Name)
			progressed = true
			break
		}
		if !progressed {
			break
		}
	}
	for _, p := range t.Workflow.Phases {
		if !done[p.Name] {
			done[p.Name] = true
			order = append(order, p.Name)
		}
	}
	return order
}

func allDone(names []string, done map[string]bool) bool {
	for _, n := range names {
		if !done[n] {
			return false
		}
	}
	return true
}

// IsUpstream reports whether phase from is a direct or indirect dependency
// of phase to. A phase is not upstream of itself.
func (t *Team) IsUpstream(from, to string) bool {
	seen := map[string]bool{}
	stack := []string{to}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p, ok := t.PhaseByName(name)
		if !ok {
			continue
		}
		for _, dep := range p.DependsOn {
			if dep == from {
				return true
			}
			if !seen[dep] {
				seen[dep] = true
				stack = append(stack, dep)
			}
		}
	}
	return false
}

// Between returns the phases that a ROUTE from gate to target re-runs:
// target and every phase on a dependency path from target to gate, without
// the gate itself, in topological order. It returns nil when target is
// not upstream of gate.
func (t *Team) Between(target, gate string) []string {
	if !t.IsUpstream(target, gate) {
		return nil
	}
	var out []string
	for _, name := range t.Order() {
		if name == target || (t.IsUpstream(target, name) && t.IsUpstream(name, gate)) {
			out = append(out, name)
		}
	}
	return out
}

// RouteTargets returns the phases a ROUTE verdict of gate sends work back
// to: its route_to when set, else its depends_on. It returns nil for an
// unknown phase.
func (t *Team) RouteTargets(gate string) []string {
	p, ok := t.PhaseByName(gate)
	if !ok {
		return nil
	}
	if p.RouteTo != "" {
		return []string{p.RouteTo}
	}
	return append([]string(nil), p.DependsOn...)
}

// inputRefRE matches an input reference such as $(inputs.target).
var inputRefRE = regexp.MustCompile(`\$\(inputs\.([^)\s]*)\)`)

// Substitute replaces every $(inputs.name) in s with inputs[name]. A
// reference to a name missing from inputs is left as it is.
func Substitute(s string, inputs map[string]string) string {
	if !strings.Contains(s, "$(inputs.") {
		return s
	}
	return inputRefRE.ReplaceAllStringFunc(s, func(ref string) string {
		name := inputRefRE.FindStringSubmatch(ref)[1]
		if v, ok := inputs[name]; ok {
			return v
		}
		return ref
	})
}

// InputRefs returns the input names referenced in s, in order of first
// appearance.
func InputRefs(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range inputRefRE.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}
