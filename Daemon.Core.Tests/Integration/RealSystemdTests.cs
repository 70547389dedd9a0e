using System.Diagnostics;
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
public sealed class RealSystemdTests : SystemdSandboxFixture
{
    private const int Restarts = 2;
    private readonly List<string> _started = new();

    protected override string FolderLabel => "real-systemd";

    private string _example = ExampleDaemon.Program;
    private string _web = Hosting.WebDaemonTests.WebExample;

    /// <summary>
    /// Copies of the programs, installed in systemd's root under /opt: DynamicUser= implies
    /// PrivateTmp=, so a unit sees nothing of /tmp, where a clone (or the fixture's folder) may be,
    /// and its user must reach the program (copies are 0755 wherever the clone sits).
    /// </summary>
    protected override void AfterBoot()
    {
        _example = Install(TestEnvironment.CopyProgram(ExampleDaemon.Program, _files.Folder));
        _web = Install(TestEnvironment.CopyProgram(Hosting.WebDaemonTests.WebExample, _files.Folder));
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
        // systemctl start returns at READY=1; FDSTORE=1 follows it.
        Assert.That(Systemd.WaitFor("daemon-example.service", "NFileDescriptorStore", n => n == "1"), Is.True, "the listener is in the store");

        LoadResult load = RestartUnderEchoLoad("daemon-example.service", port);

        Assert.That(load.Failures, Is.Empty, load.Summary);
        Assert.That(load.Pids.Distinct().Count(), Is.EqualTo(Restarts + 1), "each restart is a new process");
        string journal = Systemd.Journal("daemon-example.service");
        // At least the first restart's line: journald drops some of the example's line per
        // connection under this load once its rate limit (10000 lines in 30 s) is reached.
        Assert.That(ExampleDaemon.Count(journal, $"systemd passed listener 'echo' back from its fd store, on 127.0.0.1:{port}"), Is.InRange(1, Restarts), journal);
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
            Assert.That(client.Echo("moved", 30_000), Is.EqualTo("moved"));
        }

        Assert.That(ExampleDaemon.Eventually(() => Refused(old), TimeSpan.FromSeconds(30)), Is.True, "nobody keeps the old port open: neither the daemon nor systemd's store");
        Assert.That(Systemd.WaitFor("daemon-example-moved.service", "NFileDescriptorStore", n => n == "1"), Is.True, "the new listener, stored after READY=1");
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
        // The first start's line at least: journald's rate limit drops lines later under this load.
        Assert.That(ExampleDaemon.Count(journal, $"systemd passed listener 'echo' on 127.0.0.1:{port}"), Is.InRange(1, Restarts + 1), journal);
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
        // The healthy one: WatchdogSec=4, a ping every 2 s, so that a busy machine's late timer is no
        // missed interval. The unhealthy one: WatchdogSec=2, and its fourth health check fails
        // (--simulate-fault).
        string Unit(int port, string watchdog, string extra) => Shipped("Daemon.Example", "daemon-example.service", "8007", port)
            .Replace("\nWatchdogSec=10\n", $"\nWatchdogSec={watchdog}\n", StringComparison.Ordinal)
            .Replace($"--port {port}", $"--port {port}{extra}", StringComparison.Ordinal);
        Systemd.Install("daemon-example-healthy.service", Unit(ExampleDaemon.FreePort(), "4", ""));
        Systemd.Install("daemon-example-unhealthy.service", Unit(ExampleDaemon.FreePort(), "2", " --simulate-fault unhealthy"));
        Start("daemon-example-healthy.service");
        Start("daemon-example-unhealthy.service");
        string healthy = Systemd.Show("daemon-example-healthy.service", "MainPID");
        string unhealthy = Systemd.Show("daemon-example-unhealthy.service", "MainPID");

        // Each WATCHDOG=1 moves the unit's watchdog timestamp: five of them span two intervals.
        // The unhealthy unit fails again after each restart, so it is restarted at least once by
        // then, maybe more.
        var pings = new HashSet<string>();
        Assert.That(Systemd.WaitFor("daemon-example-healthy.service", "WatchdogTimestampMonotonic", t => pings.Add(t) && pings.Count >= 5), Is.True);
        Assert.That(Systemd.WaitFor("daemon-example-unhealthy.service", "NRestarts", n => int.TryParse(n, out int restarts) && restarts >= 1), Is.True, Systemd.Journal("daemon-example-unhealthy.service"));

        Assert.That(Systemd.Show("daemon-example-healthy.service", "MainPID"), Is.EqualTo(healthy));
        Assert.That(Systemd.Show("daemon-example-healthy.service", "NRestarts"), Is.EqualTo("0"));
        Assert.That(Systemd.Show("daemon-example-unhealthy.service", "MainPID"), Is.Not.EqualTo(unhealthy), "a new process");
        string journal = Systemd.Journal("daemon-example-unhealthy.service");
        Assert.That(journal, Does.Contain("watchdog: the health check failed; no longer pinging").And.Contain("Watchdog timeout"));
        Assert.That(journal, Does.Contain("Killing process").And.Contain("with signal SIGTERM").And.Contain("stopping (SIGTERM)"), "WatchdogSignal=SIGTERM: it drains");
        Assert.That(ExampleDaemon.Eventually(() => Systemd.Journal("daemon-example-unhealthy.service").Contains("back from its fd store", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.True,
            "the restarted process serves on the listener systemd kept");
    }

    [Test]
    public void UpgradeUnit_Reload_ReplacesTheMainProcess_RefusingNoConnection_AndTheUnitStaysActive()
    {
        const string unit = "daemon-example-upgrade.service";
        int port = ExampleDaemon.FreePort();
        Systemd.Install(unit, Shipped("Daemon.Example", unit, "8007", port));
        Start(unit);

        LoadResult load = RestartUnderEchoLoad(unit, port, "reload");

        Assert.That(load.Failures, Is.Empty, load.Summary);
        Assert.That(load.Pids.Distinct().Count(), Is.EqualTo(Restarts + 1), "each reload is a new main process");
        Assert.That(Systemd.Show(unit, "NRestarts"), Is.EqualTo("0"));
        Assert.That(Systemd.Show(unit, "ActiveState"), Is.EqualTo("active"));
        // The daemon's own lines are not counted here: journald drops some of a line per connection
        // under this load (its rate limit). systemd's are not.
        string journal = Systemd.Journal(unit);
        Assert.That(journal, Does.Not.Contain("not our child"), "systemd adopted each new main process as its child");
        Assert.That(ExampleDaemon.Count(journal, "Reloaded daemon-example-upgrade.service"), Is.EqualTo(Restarts), journal);

        // Stopped as any main process, by SIGTERM and its exit 0: systemd sends SIGKILL at once to a
        // main process that is not its child, and the result would be "signal".
        Systemd.Systemctl("stop", unit);
        Assert.That(Systemd.Show(unit, "Result"), Is.EqualTo("success"), Systemd.Journal(unit));
        Assert.That(Systemd.Show(unit, "ExecMainStatus"), Is.EqualTo("0"));
    }

    [Test]
    public void UpgradeUnit_WebExample_Reload_FailsNoRequest_UnderHttpLoad()
    {
        const string unit = "daemon-example-web-upgrade.service";
        int port = ExampleDaemon.FreePort();
        Systemd.Install(unit, Upgrading(Shipped("Daemon.Example.Web", "daemon-example-web.service", "8080", port), "web-upgrade"));
        Start(unit);
        string first = Systemd.Show(unit, "MainPID");

        using var load = new HttpLoad(port, newConnectionClients: 8, keepAliveClients: 2, bodyStart: "hello from pid ");
        Assert.That(load.WaitForMore(50), Is.True, "served before: " + load);
        for (int i = 0; i < Restarts; i++)
        {
            Systemd.Systemctl("reload", unit);
            Assert.That(load.WaitForMore(50), Is.True, $"served after reload {i + 1}: " + load);
        }

        load.Stop();
        TestContext.Progress.WriteLine($"web example, {Restarts} systemctl reloads (overlapping upgrades): {load}");
        Assert.That(load.Failures, Is.Empty, load.ToString());
        Assert.That(Systemd.Show(unit, "MainPID"), Is.Not.EqualTo(first));
        Assert.That(Systemd.Show(unit, "NRestarts"), Is.EqualTo("0"));
    }

    [Test]
    public void UpgradeUnit_ReloadWhoseNextGenerationFails_FailsWithItsReason_AndTheMainProcessServesOn()
    {
        const string unit = "daemon-example-badupgrade.service";
        (int port, string main, _) = StartUpgradeUnit(unit, text => Regex.Replace(text, @"(\nExecReload=.*) restart (.*)\n", "$1 restart $2 --simulate-fault startup-throws\n"));
        using var load = ClientLoad.Echo(port, clients: 4);
        Assert.That(load.WaitForSuccesses(20), Is.True, load.ToString());

        AssertReloadFails_AndTheMainProcessRunsOn(unit, main, $"Daemon.Example: restart failed, pid {main} still runs and keeps its listeners: startup failed: simulated startup fault");
        Assert.That(load.WaitForSuccesses(20), Is.True, "it serves on: " + load);
        load.Stop();
        Assert.That(load.Failures, Is.Empty, load.ToString());
    }

    [Test]
    public void UpgradeUnit_RestartFromOutsideTheService_IsRefusedInOneLine()
    {
        const string unit = "daemon-example-upgrade-shell.service";
        (_, string main, string text) = StartUpgradeUnit(unit);
        string[] reload = Regex.Match(text, @"\nExecReload=(.*)\n").Groups[1].Value.Split(' ');

        // An administrator's shell: the next generation would start outside the service.
        CommandResult restarted = Systemd.Exec(reload);

        string line = restarted.AssertOneClearLine(1);
        Assert.That(line, Is.EqualTo($"Daemon.Example: pid {main} runs under systemd ({unit}): restart it with 'systemctl reload {unit}', whose ExecReload= runs 'Daemon.Example restart' with the options of ExecStart=, so that the next generation starts inside the service (docs/ADMIN.md)"));
        Assert.That(Systemd.Show(unit, "MainPID"), Is.EqualTo(main));
        Assert.That(Systemd.Journal(unit), Does.Not.Contain("handing"), "nothing was handed over");
    }

    [Test]
    public void UnitWithoutNotifyAccessAll_Reload_IsRefusedInOneLine_AndTheServiceRunsOn()
    {
        const string unit = "daemon-example-mainonly.service";
        (_, string main, _) = StartUpgradeUnit(unit, text => text.Replace("\nNotifyAccess=all\n", "\nNotifyAccess=main\n", StringComparison.Ordinal));

        AssertReloadFails_AndTheMainProcessRunsOn(unit, main, $"Daemon.Example: {unit} gives its ExecReload= no NOTIFY_SOCKET, so the next generation could not tell systemd it is ready: set NotifyAccess=all in the unit (docs/ADMIN.md)");
    }

    [Test]
    public void UpgradeUnit_TheWatchdogFollowsTheNewMainProcess()
    {
        const string unit = "daemon-example-upgrade-watched.service";
        (_, string first, _) = StartUpgradeUnit(unit, text => text.Replace("\nWatchdogSec=10\n", "\nWatchdogSec=2\n", StringComparison.Ordinal));

        Systemd.Systemctl("reload", unit);
        string next = Systemd.Show(unit, "MainPID");
        Assert.That(ExampleDaemon.Eventually(() => JournalOf(int.Parse(first, CultureInfo.InvariantCulture)).Contains("stopped (exit 0)", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.True, "the old one exited");

        // A ping a second from the new process, over two intervals; without them systemd would kill it after 2 s.
        var pings = new HashSet<string>();
        Assert.That(Systemd.WaitFor(unit, "WatchdogTimestampMonotonic", t => pings.Add(t) && pings.Count >= 5), Is.True);
        Assert.That(Systemd.Show(unit, "MainPID"), Is.EqualTo(next));
        Assert.That(Systemd.Show(unit, "NRestarts"), Is.EqualTo("0"));
        Assert.That(JournalOf(int.Parse(next, CultureInfo.InvariantCulture)), Does.Contain("watchdog: WATCHDOG=1 every 1000 ms while healthy"), "the old one's interval, passed on");
        Assert.That(JournalOf(int.Parse(first, CultureInfo.InvariantCulture)), Does.Contain($"pid {next} is the service's main process now (MAINPID=)"));
        Assert.That(Systemd.Journal(unit), Does.Not.Contain("not our child"));
    }

    [Test]
    public void UpgradeUnit_OfAWorker_StoppedWhileItsNextGenerationWaits_EndsInactive_NotFailed()
    {
        // The hosted worker, whose next generation waits for the old one to drain (8 s) before its
        // services start. 'systemctl stop' meanwhile SIGTERMs the whole service, ExecReload='s
        // restart included: systemd fails a unit whose control process dies of a signal or exits
        // non-zero, or whose main process exits non-zero.
        const string unit = "hosted-upgrade.service";
        string copy = TestEnvironment.CopyProgram(Path.Combine(AppContext.BaseDirectory, "Daemon.Example.Hosted"), _files.Folder);
        HostedExampleTests.WriteSettings(Path.Combine(Path.GetDirectoryName(copy)!, "appsettings.json"), "beat", intervalMilliseconds: 200, drainMilliseconds: 8000);
        string program = Install(copy);
        string settings = Path.GetDirectoryName(program)!;
        string options = $"--pid-file /run/hosted-upgrade/daemon.pid --content-root {settings}";
        Systemd.Install(unit, $"""
            [Service]
            Type=notify
            NotifyAccess=all
            RuntimeDirectory=hosted-upgrade
            ExecStart={program} run {options}
            ExecReload={program} restart {options}
            TimeoutStopSec=60
            """);
        Start(unit);
        string first = Systemd.Show(unit, "MainPID");

        using Process reload = Systemd.Launch("systemctl", "reload", unit);
        Assert.That(ExampleDaemon.Eventually(() => Systemd.Journal(unit).Contains($"waiting for pid {first} to exit", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.True, Systemd.Journal(unit));
        Systemd.Systemctl("stop", unit);
        CommandResult reloaded = Systemd.Finish(reload);

        Assert.That(reloaded.ExitCode, Is.Not.EqualTo(0), "the reload job was cancelled by the stop");
        Assert.That(Systemd.Show(unit, "ActiveState"), Is.EqualTo("inactive"), Systemd.Journal(unit));
        Assert.That(Systemd.Show(unit, "Result"), Is.EqualTo("success"), Systemd.Journal(unit));
        string journal = Systemd.Journal(unit);
        Assert.That(journal, Does.Contain("Daemon.Example.Hosted: restart cancelled: the service is stopping (SIGTERM)"));
        Assert.That(journal, Does.Contain("stopped by SIGTERM while waiting for the previous generation to exit; the main loop never began"));
        Assert.That(journal, Does.Not.Contain("Control process exited, code=killed"));
    }

    /// <summary>The journal's messages from process <paramref name="pid"/> (a pid in the sandbox).</summary>
    private string JournalOf(int pid) => Systemd.Exec("journalctl", "--no-pager", "-o", "cat", $"_PID={pid}").Output;

    /// <summary>
    /// <c>systemctl reload</c> of <paramref name="unit"/> fails, its journal has the one line
    /// <paramref name="reason"/>, and <paramref name="main"/> is still the active service's main process.
    /// </summary>
    private void AssertReloadFails_AndTheMainProcessRunsOn(string unit, string main, string reason)
    {
        CommandResult reloaded = Systemd.Exec("systemctl", "reload", unit);
        Assert.That(reloaded.ExitCode, Is.Not.EqualTo(0), reloaded.ToString());
        Assert.That(Systemd.Show(unit, "MainPID"), Is.EqualTo(main));
        Assert.That(Systemd.Show(unit, "ActiveState"), Is.EqualTo("active"));
        Assert.That(Systemd.Journal(unit), Does.Contain(reason));
    }

    /// <summary>
    /// Installs and starts the shipped upgrade unit as <paramref name="unit"/> (its runtime directory
    /// named after it), on a port of its own, changed by <paramref name="change"/>: its port, its
    /// main pid, and the unit's text.
    /// </summary>
    private (int Port, string MainPid, string Text) StartUpgradeUnit(string unit, Func<string, string>? change = null)
    {
        int port = ExampleDaemon.FreePort();
        string text = Shipped("Daemon.Example", "daemon-example-upgrade.service", "8007", port)
            .Replace("daemon-example-upgrade", unit[..^".service".Length], StringComparison.Ordinal);
        text = change?.Invoke(text) ?? text;
        Systemd.Install(unit, text);
        Start(unit);
        return (port, Systemd.Show(unit, "MainPID"), text);
    }

    /// <summary>
    /// A notify unit turned into one that upgrades in place on <c>systemctl reload</c>, as ADMIN.md
    /// says: a runtime directory for the pid file, and <c>ExecReload=</c> running <c>restart</c>
    /// with ExecStart='s options, and <c>NotifyAccess=all</c>, without which ExecReload= gets no
    /// NOTIFY_SOCKET.
    /// </summary>
    private static string Upgrading(string unit, string name)
    {
        string pidFile = $"--pid-file /run/{name}/daemon.pid";
        string start = Regex.Match(unit, @"\nExecStart=(\S+) run(.*)\n").Groups is var g && g[1].Success
            ? $"{g[1].Value} run{g[2].Value} {pidFile}"
            : throw new ArgumentException("no ExecStart= ... run", nameof(unit));
        return Regex.Replace(unit, @"\nExecStart=.*\n", $"\nExecStart={start}\n")
            .Replace("\nNotifyAccess=main\n", $"\nNotifyAccess=all\nRuntimeDirectory={name}\n", StringComparison.Ordinal)
            .Replace("\nExecReload=/bin/kill -HUP $MAINPID\n", $"\nExecReload={start.Replace(" run", " restart", StringComparison.Ordinal)}\n", StringComparison.Ordinal);
    }

    /// <summary>Copies <paramref name="program"/>'s folder into /opt in systemd's root; returns the program's path there.</summary>
    private string Install(string program)
    {
        string folder = Path.GetDirectoryName(program)!;
        string there = "/opt/daemon-net-tests/" + Path.GetFileName(folder);
        CommandResult copied = Systemd.Exec("sh", "-c", "mkdir -p /opt/daemon-net-tests && cp -a \"$1\" \"$2\"", "sh", folder, there);
        Assert.That(copied.ExitCode, Is.EqualTo(0), copied.ToString());
        return Path.Combine(there, Path.GetFileName(program));
    }

    /// <summary>A unit file from <paramref name="project"/>'s deploy/, with the programs under test and <paramref name="port"/> for <paramref name="shippedPort"/>.</summary>
    private string Shipped(string project, string name, string shippedPort, int port) =>
        File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, project, "deploy", name))
            .Replace("/usr/local/bin/Daemon.Example.Web", _web, StringComparison.Ordinal)
            .Replace("/usr/local/bin/Daemon.Example", _example, StringComparison.Ordinal)
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
    private LoadResult RestartUnderEchoLoad(string unit, int port, string verb = "restart")
    {
        using var load = ClientLoad.Echo(port, clients: 4);
        var pids = new List<int>();
        try
        {
            Assert.That(load.WaitForSuccesses(50), Is.True, "served before: " + load);
            pids.Add(int.Parse(Systemd.Show(unit, "MainPID"), CultureInfo.InvariantCulture));
            for (int i = 0; i < Restarts; i++)
            {
                Systemd.Systemctl(verb, unit);
                pids.Add(int.Parse(Systemd.Show(unit, "MainPID"), CultureInfo.InvariantCulture));
                Assert.That(load.WaitForSuccesses(50), Is.True, $"served after restart {i + 1}: " + load);
            }
        }
        finally
        {
            load.Stop();
        }

        TestContext.Progress.WriteLine($"{unit}, {Restarts} systemctl {verb}s: {load}");
        return new LoadResult(load.Failures, load.ToString(), pids);
    }

    private sealed record LoadResult(List<string> Failures, string Summary, List<int> Pids);
}
