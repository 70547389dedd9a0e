using System.Text.RegularExpressions;
using Daemon.Core.Tests.Hosting;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The shipped units under a real systemd (252, <see cref="SystemdSandbox"/>), one boot for the
/// fixture: <c>systemctl restart</c> of the notify unit refuses no connection because systemd keeps
/// the listener in its fd store (and does refuse without <c>FileDescriptorStoreMax=</c>, which shows
/// that the load measures something), the web example's fails no request, a socket unit's service
/// restarts refusing none, the forking unit follows the daemon's own <c>restart</c>, and the watchdog
/// keeps a healthy daemon and restarts an unhealthy one. Each test installs units of its own, on
/// ports of its own, from the files in deploy/ with only the program's path and the port changed.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class RealSystemdTests
{
    private const int Restarts = 3;
    private readonly List<string> _started = new();
    private ExampleDaemon _files = null!;
    private SystemdSandbox? _systemd;

    private SystemdSandbox Systemd => _systemd!;

    [OneTimeSetUp]
    public void BootSystemd()
    {
        _files = new ExampleDaemon("real-systemd");
        // DynamicUser=: the unit's own user runs the program where the tests built it.
        TestEnvironment.RequireReachableByOthers(Path.GetDirectoryName(ExampleDaemon.Program)!);
        _systemd = SystemdSandbox.Boot(_files);
    }

    [OneTimeTearDown]
    public void StopSystemd()
    {
        try
        {
            _systemd?.Dispose();
        }
        finally
        {
            _files.Dispose();
        }
    }

    [TearDown]
    public void StopTheTestsUnits()
    {
        foreach (string unit in _started)
        {
            _ = Systemd.Exec("systemctl", "stop", unit);
        }

        _started.Clear();
    }

    [Test]
    public void NotifyUnit_Restart_RefusesNoConnection_SystemdKeepingTheListener()
    {
        int port = ExampleDaemon.FreePort();
        Systemd.Install("daemon-example.service", Shipped("Daemon.Example", "daemon-example.service", "8007", port));
        Start("daemon-example.service");
        Assert.That(Systemd.Show("daemon-example.service", "NFileDescriptorStore"), Is.EqualTo("1"), "the listener is in the store");

        LoadResult load = RestartUnderEchoLoad("daemon-example.service", port);

        Assert.That(load.Failures, Is.Empty, load.Summary);
        Assert.That(load.Pids.Distinct().Count(), Is.EqualTo(Restarts + 1), "each restart is a new process");
        string journal = Systemd.Journal("daemon-example.service");
        Assert.That(ExampleDaemon.Count(journal, $"systemd passed listener 'echo' back from its fd store, on 127.0.0.1:{port}"), Is.EqualTo(Restarts), journal);
        Assert.That(journal, Does.Not.Contain("warning").And.Not.Contain("Cannot store"));
        Assert.That(Systemd.Show("daemon-example.service", "NFileDescriptorStore"), Is.EqualTo("1"), "taken back, not stored twice");

        Systemd.Systemctl("stop", "daemon-example.service");
        Assert.That(Systemd.Show("daemon-example.service", "NFileDescriptorStore"), Is.EqualTo("0"), "a stop for good empties the store");
        Assert.That(ExampleDaemon.Eventually(() => Refused(port), TimeSpan.FromSeconds(30)), Is.True, "and the port is closed");
    }

    [Test]
    public void NotifyUnit_WithoutFileDescriptorStoreMax_RefusesConnectionsOnRestart_AndTheDaemonDoesNotWarn()
    {
        // The control: the same unit and load, but systemd keeps nothing. The gap between the old
        // process and the new one shows as refused connections.
        int port = ExampleDaemon.FreePort();
        string unit = Regex.Replace(Shipped("Daemon.Example", "daemon-example.service", "8007", port), @"\nFileDescriptorStoreMax=\d+", "\n");
        Systemd.Install("daemon-example-nostore.service", unit);
        Start("daemon-example-nostore.service");

        LoadResult load = RestartUnderEchoLoad("daemon-example-nostore.service", port);

        Assert.That(load.Failures.Count(f => f.EndsWith(": ConnectionRefused", StringComparison.Ordinal)), Is.Positive, load.Summary);
        string journal = Systemd.Journal("daemon-example-nostore.service");
        Assert.That(journal, Does.Contain("Cannot store more fds than FileDescriptorStoreMax=0"), "systemd says why, at each start");
        Assert.That(journal, Does.Contain("if the unit sets FileDescriptorStoreMax= (at least 1)").And.Not.Contain("warning:"), "the daemon says how, without a warning");
    }

    [Test]
    public void NotifyUnit_RestartedOnAnotherPort_ClosesTheOldOne_AndTheStoreKeepsOnlyTheNewOne()
    {
        int old = ExampleDaemon.FreePort();
        int port = ExampleDaemon.FreePort();
        Systemd.Install("daemon-example-moved.service", Shipped("Daemon.Example", "daemon-example.service", "8007", old));
        Start("daemon-example-moved.service");
        Systemd.Install("daemon-example-moved.service", Shipped("Daemon.Example", "daemon-example.service", "8007", port));

        Systemd.Systemctl("restart", "daemon-example-moved.service");

        using (var client = new EchoClient(port))
        {
            Assert.That(client.Echo("moved", 5000), Is.EqualTo("moved"));
        }

        Assert.That(ExampleDaemon.Eventually(() => Refused(old), TimeSpan.FromSeconds(30)), Is.True, "nobody keeps the old port open: neither the daemon nor systemd's store");
        Assert.That(Systemd.Show("daemon-example-moved.service", "NFileDescriptorStore"), Is.EqualTo("1"));
        string journal = Systemd.Journal("daemon-example-moved.service");
        Assert.That(journal, Does.Contain($"'echo' was kept in systemd's fd store bound to 127.0.0.1:{old}, not 127.0.0.1:{port}: listening there instead"));
        Assert.That(journal, Does.Contain($"warning: inherited listener 'echo' on 127.0.0.1:{old} was not claimed; closing it and removing it from systemd's fd store"));
    }

    [Test]
    public void WebUnit_Restart_FailsNoRequest_UnderHttpLoad()
    {
        int port = ExampleDaemon.FreePort();
        Systemd.Install("daemon-example-web.service", Shipped("Daemon.Example.Web", "daemon-example-web.service", "8080", port));
        Start("daemon-example-web.service");

        using var load = new HttpLoad(port, newConnectionClients: 8, keepAliveClients: 2, bodyStart: "hello from pid ");
        Assert.That(load.WaitForMore(50), Is.True, "served before: " + load);
        for (int i = 0; i < Restarts; i++)
        {
            Systemd.Systemctl("restart", "daemon-example-web.service");
            Assert.That(load.WaitForMore(50), Is.True, $"served after restart {i + 1}: " + load);
        }

        load.Stop();
        TestContext.Progress.WriteLine($"web example, {Restarts} systemctl restarts: {load}");
        Assert.That(load.Failures, Is.Empty, load.ToString());
        Assert.That(Systemd.Journal("daemon-example-web.service"), Does.Contain($"back from its fd store, on 127.0.0.1:{port}").And.Contain($"(inherited as '127.0.0.1:{port}')"));
    }

    [Test]
    public void SocketUnit_StartsTheServiceAtTheFirstConnection_AndItsRestart_RefusesNoConnection()
    {
        int port = ExampleDaemon.FreePort();
        Systemd.Install("daemon-example-activated.service", Shipped("Daemon.Example", "daemon-example-activated.service", "8007", port));
        Systemd.Install("daemon-example.socket", Shipped("Daemon.Example", "daemon-example.socket", "8007", port));
        _started.Add("daemon-example-activated.service");
        Start("daemon-example.socket");
        Assert.That(Systemd.Show("daemon-example-activated.service", "ActiveState"), Is.EqualTo("inactive"), "nothing runs before a client comes");

        LoadResult load = RestartUnderEchoLoad("daemon-example-activated.service", port);

        Assert.That(load.Failures, Is.Empty, load.Summary);
        Assert.That(load.Pids.Distinct().Count(), Is.EqualTo(Restarts + 1));
        string journal = Systemd.Journal("daemon-example-activated.service");
        Assert.That(ExampleDaemon.Count(journal, $"systemd passed listener 'echo' on 127.0.0.1:{port}"), Is.EqualTo(Restarts + 1), journal);
        Assert.That(journal, Does.Not.Contain("fd store").And.Not.Contain("Cannot store"), "systemd holds the socket already: nothing to store");
    }

    [Test]
    public void ForkingUnit_FollowsTheNewMainPid_AfterTheDaemonsOwnRestart_RefusingNoConnection()
    {
        int port = ExampleDaemon.FreePort();
        string unit = Shipped("Daemon.Example", "daemon-example-forking.service", "8007", port);
        Systemd.Install("daemon-example-forking.service", unit);
        Start("daemon-example-forking.service");
        string restart = Regex.Match(unit, @"\nExecStart=(\S+) start (.*)\n").Result("$1 restart $2");

        using var load = ClientLoad.Echo(port, clients: 4);
        Assert.That(load.WaitForSuccesses(50), Is.True, load.ToString());
        var pids = new List<string> { Systemd.Show("daemon-example-forking.service", "MainPID") };
        for (int i = 0; i < Restarts; i++)
        {
            CommandResult restarted = Systemd.Exec(restart.Split(' '));
            Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
            string next = Regex.Match(restarted.Output, @"^restarted \(pid (\d+);").Groups[1].Value;
            Assert.That(Systemd.WaitFor("daemon-example-forking.service", "MainPID", pid => pid == next), Is.True, $"systemd follows pid {next} in the pid file");
            pids.Add(next);
            Assert.That(load.WaitForSuccesses(50), Is.True, load.ToString());
        }

        load.Stop();
        Assert.That(load.Failures, Is.Empty, load.ToString());
        Assert.That(pids.Distinct().Count(), Is.EqualTo(Restarts + 1));
        Assert.That(Systemd.Show("daemon-example-forking.service", "ActiveState"), Is.EqualTo("active"));
        Assert.That(Systemd.Show("daemon-example-forking.service", "NRestarts"), Is.EqualTo("0"), "never seen as failed");
    }

    [Test]
    public void Watchdog_KeepsAHealthyDaemonOverSeveralIntervals_AndRestartsAnUnhealthyOne()
    {
        // WatchdogSec=2: a ping every second. The unhealthy one's fourth health check fails (--simulate-fault).
        string Unit(int port, string extra) => Shipped("Daemon.Example", "daemon-example.service", "8007", port)
            .Replace("\nWatchdogSec=10\n", "\nWatchdogSec=2\n", StringComparison.Ordinal)
            .Replace($"--port {port}", $"--port {port}{extra}", StringComparison.Ordinal);
        Systemd.Install("daemon-example-healthy.service", Unit(ExampleDaemon.FreePort(), ""));
        Systemd.Install("daemon-example-unhealthy.service", Unit(ExampleDaemon.FreePort(), " --simulate-fault unhealthy"));
        Start("daemon-example-healthy.service");
        Start("daemon-example-unhealthy.service");
        string healthy = Systemd.Show("daemon-example-healthy.service", "MainPID");
        string unhealthy = Systemd.Show("daemon-example-unhealthy.service", "MainPID");

        // Each WATCHDOG=1 moves the unit's watchdog timestamp: seven of them span three intervals.
        var pings = new HashSet<string>();
        Assert.That(Systemd.WaitFor("daemon-example-healthy.service", "WatchdogTimestampMonotonic", t => pings.Add(t) && pings.Count >= 7), Is.True);
        Assert.That(Systemd.WaitFor("daemon-example-unhealthy.service", "NRestarts", n => n == "1"), Is.True, Systemd.Journal("daemon-example-unhealthy.service"));

        Assert.That(Systemd.Show("daemon-example-healthy.service", "MainPID"), Is.EqualTo(healthy));
        Assert.That(Systemd.Show("daemon-example-healthy.service", "NRestarts"), Is.EqualTo("0"));
        Assert.That(Systemd.Show("daemon-example-unhealthy.service", "MainPID"), Is.Not.EqualTo(unhealthy), "a new process");
        string journal = Systemd.Journal("daemon-example-unhealthy.service");
        Assert.That(journal, Does.Contain("watchdog: the health check failed; no longer pinging").And.Contain("Watchdog timeout"));
        Assert.That(journal, Does.Contain("Killing process").And.Contain("with signal SIGTERM").And.Contain("stopping (SIGTERM)"), "WatchdogSignal=SIGTERM: it drains");
        Assert.That(ExampleDaemon.Eventually(() => Systemd.Journal("daemon-example-unhealthy.service").Contains("back from its fd store", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.True,
            "the restarted process serves on the listener systemd kept");
    }

    /// <summary>A unit file from <paramref name="project"/>'s deploy/, with the programs under test and <paramref name="port"/> for <paramref name="shippedPort"/>.</summary>
    private static string Shipped(string project, string name, string shippedPort, int port) =>
        TestEnvironment.WithProgramsUnderTest(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, project, "deploy", name)))
            .Replace(shippedPort, port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    private static bool Refused(int port)
    {
        try
        {
            using var client = new EchoClient(port);
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
    }

    private void Start(string unit)
    {
        _started.Add(unit);
        Systemd.Systemctl("start", unit);
    }

    /// <summary>
    /// Echo clients on <paramref name="port"/> while <see cref="Restarts"/> <c>systemctl restart</c>s
    /// of <paramref name="unit"/> run, each followed by rounds served: what failed, and the main pids seen.
    /// </summary>
    private LoadResult RestartUnderEchoLoad(string unit, int port)
    {
        using var load = ClientLoad.Echo(port, clients: 4);
        var pids = new List<int>();
        try
        {
            Assert.That(load.WaitForSuccesses(50), Is.True, "served before: " + load);
            pids.Add(int.Parse(Systemd.Show(unit, "MainPID"), CultureInfo.InvariantCulture));
            for (int i = 0; i < Restarts; i++)
            {
                Systemd.Systemctl("restart", unit);
                pids.Add(int.Parse(Systemd.Show(unit, "MainPID"), CultureInfo.InvariantCulture));
                Assert.That(load.WaitForSuccesses(50), Is.True, $"served after restart {i + 1}: " + load);
            }
        }
        finally
        {
            load.Stop();
        }

        TestContext.Progress.WriteLine($"{unit}, {Restarts} systemctl restarts: {load}");
        return new LoadResult(load.Failures, load.ToString(), pids);
    }

    private sealed record LoadResult(List<string> Failures, string Summary, List<int> Pids);
}
