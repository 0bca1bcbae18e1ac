// Package testutil holds what several packages' tests need: the shared test data beside the
// repository, the engine the tests run on, hostile images, and checks on written files. Only
// tests import it.
package testutil
