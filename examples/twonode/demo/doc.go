// Package demo is the two-node shopping-cart demo of peersession: an app
// whose HTTP sessions are replicated between its instances, so a user stays
// logged in, with the same cart, whichever instance a load balancer picks
// and when one of them stops.
//
// A Node is one instance of the app: a peersession.Store joined to the
// cluster and an HTTP server (see Handler for its endpoints). NewProxy is a
// small round-robin load balancer. Start runs two nodes and a proxy in one
// process, and Demo.Walkthrough drives them as a user would.
//
// The code is meant to be read and copied: node.go shows how to wire a
// Store into a server and shut it down, handlers.go how handlers use the
// session.
package demo
