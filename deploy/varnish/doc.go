// Package varnish holds the Varnish configuration styleproxy recommends in front of it
// (styleproxy.vcl, shown in the README) and its end-to-end test: a real varnishd running exactly
// that file in front of a real `styleproxy serve`. The package has no Go code of its own.
package varnish
