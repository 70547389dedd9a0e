using Daemon.Options;

namespace Daemon.Core.Tests.Unit;

/// <summary>Where the default files go, for root and for other users.</summary>
[TestFixture]
public sealed class DaemonPathsTests
{
    [Test]
    public void RelativeXdgValues_AreIgnored_AsTheSpecSays()
    {
        var paths = new DaemonPaths("t", isRoot: false, runtimeDirectory: "run/user", stateHome: "state", home: "/home/u");
        Assert.That(paths.DefaultPidFile, Is.EqualTo("/home/u/.local/state/t/t.pid"));
        Assert.That(paths.DefaultLogFile, Is.EqualTo("/home/u/.local/state/t/t.log"));
    }

    [Test]
    public void ARelativeHome_IsNeverUsed_SoTheDaemonAndTheCommandsAgree()
    {
        var paths = new DaemonPaths("t", isRoot: false, runtimeDirectory: null, stateHome: null, home: "home/u");
        Assert.That(paths.DefaultPidFile, Does.StartWith("/"));
        Assert.That(paths.DefaultLogFile, Does.StartWith("/"));
    }

    [Test]
    public void AbsoluteXdgValues_AreUsed()
    {
        var paths = new DaemonPaths("t", isRoot: false, runtimeDirectory: "/run/user/1000", stateHome: "/var/state", home: "/home/u");
        Assert.That(paths.DefaultPidFile, Is.EqualTo("/run/user/1000/t.pid"));
        Assert.That(paths.DefaultLogFile, Is.EqualTo("/var/state/t/t.log"));
    }
}
