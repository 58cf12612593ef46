// Package registry is the one place that knows provider types: it turns a provider
// specification (from gavel.yaml or the environment) into an adapters.Provider, and knows
// each vendor SDK's environment conventions. Nothing else in gavel switches on a
// provider's type.
package registry
