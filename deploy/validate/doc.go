// Package validate checks the deployment files in deploy/docker and deploy/kubernetes
// offline, since no cluster or image registry is at hand: every manifest is decoded
// strictly into the Kubernetes API types (an unknown or misspelled field is an error),
// gavel.yaml from the ConfigMap goes through gavel's own config parser with exactly the
// variables the Deployment provides, and the invariants that tie them together are
// checked (probe paths and ports, the drain time against app.ExitBound, resources,
// non-root security contexts, selectors, Secret references, the Dockerfile's build and
// run stages).
//
// It is a module of its own so that the gateway's module does not carry the Kubernetes
// API types (k8s.io/api and k8s.io/apimachinery and theirs) as dependencies; `make test`
// runs it (make deploy-check).
package validate
