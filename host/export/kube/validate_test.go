package kube

import (
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate checks the objects, decoded into k8s.io/api's types, with the rules the API server
// would apply that apimachinery exports (names, labels, ports, environment names) and the ones the types imply (a selector
// that matches its pod template, a StatefulSet's governing Service, probe thresholds). The
// server's own validation lives in k8s.io/kubernetes, which is not a library; these are its
// rules that this export can break.
func Validate(objs []any) error {
	var errs []error
	services := map[string]bool{}
	for _, o := range objs {
		if s, ok := o.(*corev1.Service); ok {
			services[s.Name] = true
		}
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			errs = append(errs, workload("Deployment", o.ObjectMeta, o.Spec.Replicas, o.Spec.Selector, o.Spec.Template, validation.IsDNS1123Subdomain)...)
		case *appsv1.StatefulSet:
			errs = append(errs, workload("StatefulSet", o.ObjectMeta, o.Spec.Replicas, o.Spec.Selector, o.Spec.Template, validation.IsDNS1123Label)...)
			if !services[o.Spec.ServiceName] {
				errs = append(errs, fmt.Errorf("StatefulSet %s: serviceName %q names no Service of the export", o.Name, o.Spec.ServiceName))
			}
			if len(o.Name) > maxName {
				errs = append(errs, fmt.Errorf("StatefulSet %s: a name longer than %d leaves its pods' revision label over 63 characters", o.Name, maxName))
			}
		case *corev1.Service:
			errs = append(errs, serviceErrs(o)...)
		default:
			errs = append(errs, fmt.Errorf("unexpected object %T", o))
		}
	}
	return errors.Join(errs...)
}

func workload(kind string, meta metav1.ObjectMeta, replicas *int32, sel *metav1.LabelSelector, tmpl corev1.PodTemplateSpec, isName func(string) []string) []error {
	var errs []error
	where := kind + " " + meta.Name
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...)))
	}
	for _, msg := range isName(meta.Name) {
		bad("name: %s", msg)
	}
	errs = append(errs, labelErrs(where, meta.Labels)...)
	errs = append(errs, labelErrs(where+" pod template", tmpl.Labels)...)
	if replicas == nil || *replicas < 0 {
		bad("replicas must be set and not negative")
	}
	if sel == nil || len(sel.MatchLabels) == 0 {
		bad("selector is empty")
	} else {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			bad("selector: %v", err)
		} else if !s.Matches(labels.Set(tmpl.Labels)) {
			bad("selector %s does not match the pod template's labels", s)
		}
	}
	if len(tmpl.Spec.Containers) == 0 {
		bad("no container")
	}
	names := map[string]bool{}
	for _, c := range append(append([]corev1.Container(nil), tmpl.Spec.InitContainers...), tmpl.Spec.Containers...) {
		if names[c.Name] {
			bad("container name %q twice (init containers included)", c.Name)
		}
		names[c.Name] = true
		errs = append(errs, containerErrs(where, c)...)
	}
	for _, c := range tmpl.Spec.InitContainers {
		if c.ReadinessProbe != nil || c.LivenessProbe != nil {
			bad("init container %s: an init container runs to completion and takes no probe", c.Name)
		}
	}
	if g := tmpl.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		bad("terminationGracePeriodSeconds is negative")
	}
	return errs
}

func containerErrs(where string, c corev1.Container) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: container %s: %s", where, c.Name, fmt.Sprintf(format, a...)))
	}
	for _, msg := range validation.IsDNS1123Label(c.Name) {
		bad("name: %s", msg)
	}
	if strings.TrimSpace(c.Image) == "" {
		bad("image is empty")
	}
	if len(c.Command) == 0 {
		bad("command is empty")
	}
	names := map[string]bool{}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortNum(int(p.ContainerPort)) {
			bad("port %d: %s", p.ContainerPort, msg)
		}
		for _, msg := range validation.IsValidPortName(p.Name) {
			bad("port name %q: %s", p.Name, msg)
		}
		if names[p.Name] {
			bad("port name %q twice", p.Name)
		}
		names[p.Name] = true
	}
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			bad("env %q: %s", e.Name, msg)
		}
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil {
			continue
		}
		if p.PeriodSeconds < 1 || p.TimeoutSeconds < 1 || p.FailureThreshold < 1 {
			bad("probe periodSeconds, timeoutSeconds and failureThreshold must be at least 1")
		}
		handlers := 0
		if p.HTTPGet != nil {
			handlers++
			for _, msg := range validation.IsValidPortNum(p.HTTPGet.Port.IntValue()) {
				bad("probe port: %s", msg)
			}
			if !strings.HasPrefix(p.HTTPGet.Path, "/") {
				bad("probe path %q must start with /", p.HTTPGet.Path)
			}
		}
		if p.Exec != nil {
			handlers++
			if len(p.Exec.Command) == 0 {
				bad("exec probe has no command")
			}
		}
		if handlers != 1 {
			bad("a probe needs exactly one handler, has %d", handlers)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && q.Sign() <= 0 {
		bad("memory limit %s is not positive", q.String())
	}
	return errs
}

func serviceErrs(s *corev1.Service) []error {
	var errs []error
	where := "Service " + s.Name
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...)))
	}
	for _, msg := range validation.IsDNS1035Label(s.Name) {
		bad("name: %s", msg)
	}
	errs = append(errs, labelErrs(where, s.Labels)...)
	errs = append(errs, labelErrs(where+" selector", s.Spec.Selector)...)
	if len(s.Spec.Ports) == 0 && s.Spec.ClusterIP != corev1.ClusterIPNone {
		bad("a Service that is not headless needs a port")
	}
	for _, p := range s.Spec.Ports {
		for _, msg := range validation.IsValidPortNum(int(p.Port)) {
			bad("port %d: %s", p.Port, msg)
		}
		for _, msg := range validation.IsValidPortNum(p.TargetPort.IntValue()) {
			bad("targetPort: %s", msg)
		}
		if len(s.Spec.Ports) > 1 || p.Name != "" {
			for _, msg := range validation.IsDNS1123Label(p.Name) {
				bad("port name %q: %s", p.Name, msg)
			}
		}
	}
	return errs
}

func labelErrs(where string, set map[string]string) []error {
	var errs []error
	for k, v := range set {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("%s: label key %q: %s", where, k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Errorf("%s: label %s=%q: %s", where, k, v, msg))
		}
	}
	return errs
}
