package nomad

import "time"

// The job is built from these types rather than github.com/hashicorp/nomad/api's: that module,
// hcl/v2 with go-cty (which writing its HCL took) and k8s.io/api made the pmdaemon binary 12 MB
// larger and every pmdaemon process, the daemon's included, 4 MB larger, since a linked
// package initialises in every process (docs/performance.md), for a command few users run.
// Each type holds only the fields this export sets, under the names
// of the API's JSON (its Go field names) in the API's order; hcl.go writes them under the
// jobspec's block and attribute names. The tests decode both forms strictly into the
// nomad/api types, so a name here that is not Nomad's fails there.

// Job is api.Job.
type Job struct {
	ID          string       `json:"ID"`
	Name        string       `json:"Name"`
	Type        string       `json:"Type"`
	Datacenters []string     `json:"Datacenters"`
	TaskGroups  []*TaskGroup `json:"TaskGroups"`
}

// TaskGroup is api.TaskGroup.
type TaskGroup struct {
	Name          string             `json:"Name"`
	Count         int                `json:"Count"`
	Tasks         []*Task            `json:"Tasks"`
	RestartPolicy *RestartPolicy     `json:"RestartPolicy,omitempty"`
	Networks      []*NetworkResource `json:"Networks,omitempty"`
}

// Task is api.Task. Config is the driver's: its values are strings and lists of strings.
type Task struct {
	Name      string            `json:"Name"`
	Driver    string            `json:"Driver"`
	Lifecycle *TaskLifecycle    `json:"Lifecycle,omitempty"`
	Config    map[string]any    `json:"Config"`
	Env       map[string]string `json:"Env,omitempty"`
	Services  []*Service        `json:"Services,omitempty"`
	Resources *Resources        `json:"Resources,omitempty"`
	// RestartPolicy is a prestart task's own; a main task follows its group's.
	RestartPolicy *RestartPolicy `json:"RestartPolicy,omitempty"`
	KillTimeout   time.Duration  `json:"KillTimeout"`
	LogConfig     *LogConfig     `json:"LogConfig,omitempty"`
}

// TaskLifecycle is api.TaskLifecycle: a task that runs before (prestart) or beside the
// group's main tasks.
type TaskLifecycle struct {
	Hook    string `json:"Hook"`
	Sidecar bool   `json:"Sidecar,omitempty"`
}

// RestartPolicy is api.RestartPolicy. Interval and Delay are pointers: a policy without
// restarts sets neither, and a delay of 0 is written.
type RestartPolicy struct {
	Interval *time.Duration `json:"Interval,omitempty"`
	Attempts int            `json:"Attempts"`
	Delay    *time.Duration `json:"Delay,omitempty"`
	Mode     string         `json:"Mode"`
}

// NetworkResource is api.NetworkResource: static ports in ReservedPorts, ports Nomad picks
// in DynamicPorts.
type NetworkResource struct {
	ReservedPorts []Port `json:"ReservedPorts,omitempty"`
	DynamicPorts  []Port `json:"DynamicPorts,omitempty"`
}

// Port is api.Port; Value is the static port (0 for a dynamic one).
type Port struct {
	Label string `json:"Label"`
	Value int    `json:"Value,omitempty"`
}

// Service is api.Service.
type Service struct {
	Name      string         `json:"Name"`
	PortLabel string         `json:"PortLabel,omitempty"`
	Checks    []ServiceCheck `json:"Checks,omitempty"`
	Provider  string         `json:"Provider"`
}

// ServiceCheck is api.ServiceCheck.
type ServiceCheck struct {
	Name         string        `json:"Name"`
	Type         string        `json:"Type"`
	Command      string        `json:"Command,omitempty"`
	Args         []string      `json:"Args,omitempty"`
	Path         string        `json:"Path,omitempty"`
	Protocol     string        `json:"Protocol,omitempty"`
	PortLabel    string        `json:"PortLabel,omitempty"`
	Interval     time.Duration `json:"Interval"`
	Timeout      time.Duration `json:"Timeout"`
	CheckRestart *CheckRestart `json:"CheckRestart,omitempty"`
}

// CheckRestart is api.CheckRestart.
type CheckRestart struct {
	Limit int `json:"Limit"`
}

// Resources is api.Resources.
type Resources struct {
	MemoryMB int `json:"MemoryMB"`
}

// LogConfig is api.LogConfig.
type LogConfig struct {
	MaxFiles      int `json:"MaxFiles"`
	MaxFileSizeMB int `json:"MaxFileSizeMB"`
}
