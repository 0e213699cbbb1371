// Package validate checks the deployment files offline: the Kubernetes
// manifests (built with kustomize and decoded strictly into the typed
// Kubernetes and Prometheus Operator objects), the Prometheus alert rules,
// the Grafana dashboard, the compose file and the Docker build context.
// Nothing here needs a cluster, a Docker engine or the network:
//
//	cd deployments/validate && go test ./...
//
// It is its own module so that the Kubernetes, kustomize, compose and
// Prometheus libraries stay out of the service's go.mod.
package validate
