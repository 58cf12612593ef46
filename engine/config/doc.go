// Package config reads gavel.yaml: ${ENV} expansion, strict decoding (an unknown field is
// an error that names it and its line), named defaults, and Validate. It also merges the
// providers declared in the file with those found in the environment.
package config
