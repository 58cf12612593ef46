// Package policytest runs Rego unit tests with OPA's own tester, the engine behind
// `opa test`, so `gavel policy test` and stock `opa test` agree on every result. On top of
// OPA's report it measures coverage over policy files only: OPA's --threshold counts the
// _test.rego files too, which inflates the figure a governance team gates on.
package policytest
