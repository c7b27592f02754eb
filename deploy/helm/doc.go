// Package helm holds the test that renders assertd's Helm chart (the
// directory assertd) with Helm's own engine and checks the objects it
// makes. It is a module of its own so that Helm's dependencies stay out of
// assertd's.
package helm
