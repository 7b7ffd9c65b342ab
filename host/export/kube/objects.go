package kube

import (
	"strconv"
)

// The objects are built from these types rather than k8s.io/api's, for the reason
// host/export/nomad/job.go gives: the libraries made every pmdaemon process larger, the
// daemon's included, for a command few users run. Each type holds only the fields this export sets, under the JSON names of k8s.io/api's
// (apps/v1, core/v1), with the same omitempty, so the manifests are what the typed objects
// would write. The tests decode the YAML strictly into k8s.io/api's types, validate it with
// apimachinery's rules, and write it back through those types to the same bytes.

// TypeMeta is metav1.TypeMeta.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the part of metav1.ObjectMeta the export sets.
type ObjectMeta struct {
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Deployment is appsv1.Deployment.
type Deployment struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     DeploymentSpec `json:"spec"`
}

// DeploymentSpec is appsv1.DeploymentSpec. Strategy stays empty (Kubernetes' rolling
// update); like the typed struct, it is written as {}.
type DeploymentSpec struct {
	Replicas *int32          `json:"replicas,omitempty"`
	Selector *LabelSelector  `json:"selector"`
	Template PodTemplateSpec `json:"template"`
	Strategy struct{}        `json:"strategy"`
}

// StatefulSet is appsv1.StatefulSet.
type StatefulSet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     StatefulSetSpec `json:"spec"`
}

// StatefulSetSpec is appsv1.StatefulSetSpec; UpdateStrategy is DeploymentSpec.Strategy's kind.
type StatefulSetSpec struct {
	Replicas            *int32          `json:"replicas,omitempty"`
	Selector            *LabelSelector  `json:"selector"`
	Template            PodTemplateSpec `json:"template"`
	ServiceName         string          `json:"serviceName"`
	PodManagementPolicy string          `json:"podManagementPolicy,omitempty"`
	UpdateStrategy      struct{}        `json:"updateStrategy"`
}

// LabelSelector is metav1.LabelSelector.
type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// PodTemplateSpec is corev1.PodTemplateSpec.
type PodTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
}

// PodSpec is corev1.PodSpec.
type PodSpec struct {
	InitContainers                []Container `json:"initContainers,omitempty"`
	Containers                    []Container `json:"containers"`
	TerminationGracePeriodSeconds *int64      `json:"terminationGracePeriodSeconds,omitempty"`
}

// Container is corev1.Container. Resources, a struct in the typed Container too, is always
// written, as {} without a limit.
type Container struct {
	Name           string               `json:"name"`
	Image          string               `json:"image,omitempty"`
	Command        []string             `json:"command,omitempty"`
	WorkingDir     string               `json:"workingDir,omitempty"`
	Ports          []ContainerPort      `json:"ports,omitempty"`
	Env            []EnvVar             `json:"env,omitempty"`
	Resources      ResourceRequirements `json:"resources"`
	LivenessProbe  *Probe               `json:"livenessProbe,omitempty"`
	ReadinessProbe *Probe               `json:"readinessProbe,omitempty"`
}

// ContainerPort is corev1.ContainerPort.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

// EnvVar is corev1.EnvVar.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// ResourceRequirements is corev1.ResourceRequirements; a limit is a quantity's text
// (Quantity below).
type ResourceRequirements struct {
	Limits map[string]string `json:"limits,omitempty"`
}

// Probe is corev1.Probe with its handler (corev1.ProbeHandler, inlined there too).
type Probe struct {
	Exec             *ExecAction    `json:"exec,omitempty"`
	HTTPGet          *HTTPGetAction `json:"httpGet,omitempty"`
	TimeoutSeconds   int32          `json:"timeoutSeconds,omitempty"`
	PeriodSeconds    int32          `json:"periodSeconds,omitempty"`
	FailureThreshold int32          `json:"failureThreshold,omitempty"`
}

// ExecAction is corev1.ExecAction.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// HTTPGetAction is corev1.HTTPGetAction; Port is always a number here (intstr's int form).
type HTTPGetAction struct {
	Path   string `json:"path,omitempty"`
	Port   int32  `json:"port"`
	Scheme string `json:"scheme,omitempty"`
}

// Service is corev1.Service.
type Service struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     ServiceSpec `json:"spec"`
}

// ServiceSpec is corev1.ServiceSpec.
type ServiceSpec struct {
	Ports     []ServicePort     `json:"ports,omitempty"`
	Selector  map[string]string `json:"selector,omitempty"`
	ClusterIP string            `json:"clusterIP,omitempty"`
}

// ServicePort is corev1.ServicePort.
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       int32  `json:"port"`
	TargetPort int32  `json:"targetPort,omitempty"`
}

// Quantity writes a number of bytes as resource.NewQuantity(bytes, resource.BinarySI)
// writes it (the tests hold it to that): the largest power of 1024 that divides it as a
// suffix (1536Mi), and, as apimachinery does, a decimal suffix below 1024 bytes (1000 is 1k).
func Quantity(bytes int64) string {
	if bytes > -1024 && bytes < 1024 {
		if bytes != 0 && bytes%1000 == 0 {
			return strconv.FormatInt(bytes/1000, 10) + "k"
		}
		return strconv.FormatInt(bytes, 10)
	}
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	i := 0
	for bytes%1024 == 0 && i < len(suffixes)-1 {
		bytes /= 1024
		i++
	}
	return strconv.FormatInt(bytes, 10) + suffixes[i]
}
