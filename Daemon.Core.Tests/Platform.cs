using System.Runtime.Versioning;

// The tests run on Linux only, like the library they test: every Linux-only API of Daemon.Core
// may be called from any fixture without a platform check.
[assembly: SupportedOSPlatform("linux")]
