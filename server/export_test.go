package server

// WriteTestCert is writeTestCert for the server_test package.
var WriteTestCert = writeTestCert
