namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The example under a real systemd (one <see cref="SystemdSandbox"/> for the fixture), in
/// Type=notify units running <c>run</c>: what the journal holds of its lines, how a failed
/// startup is reported, and EXTEND_TIMEOUT_USEC against a short TimeoutStartSec=. Each test has
/// units and a port of its own; stopping the sandbox ends whatever they started.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class SystemdJournalTests : SystemdSandboxFixture
{
    private const string Example = "Daemon.Example";
    private const string Hosted = "Daemon.Example.Hosted";

    // The fixture's folder holds greeting and unit files; the programs are seen through the overlay of /.
    protected override string FolderLabel => "systemd-journal";

    [Test]
    public void TheJournal_HasEachLineOnce_AtItsPriority_WithoutASecondTimestamp()
    {
        int port = ExampleDaemon.FreePort();
        string greeting = Path.Combine(_files.Folder, "greeting-lines");
        File.WriteAllText(greeting, "hello\n");
        string unit = Install("lines", ExampleDaemon.Program, $"run --port {port} --greeting-file {greeting}");
        Systemd.Systemctl("start", unit);

        // A reload that cannot read the greeting file: a warning, and the daemon goes on.
        File.Delete(greeting);
        Systemd.Systemctl("reload", unit);
        Assert.That(WaitForMessage(unit, Example, "reload failed"), Is.True, string.Join('\n', Messages(unit, Example)));
        Systemd.Systemctl("stop", unit);
        Assert.That(WaitForMessage(unit, Example, "stopped (exit 0)"), Is.True);

        string[] lines = Messages(unit, Example);
        string[] warnings = Messages(unit, Example, "-p", "warning");
        string[] information = Messages(unit, Example, "-p", "info..info");
        string all = string.Join('\n', lines);
        Assert.That(warnings, Has.Length.EqualTo(1), all);
        Assert.That(warnings[0], Does.StartWith($"warning: reload failed: cannot read greeting file {greeting}"));
        Assert.That(information, Is.EqualTo(lines.Where(line => line != warnings[0]).ToArray()), "every other line is information");
        Assert.That(lines.Count(line => line == "ready"), Is.EqualTo(1), all);
        Assert.That(lines, Has.None.Match(@"^\d{4}-\d\d-\d\dT").And.None.Contain($"{Example}["), "the journal stamps the time, name and pid, once");
        Assert.That(lines, Does.Contain($"listening on 127.0.0.1:{port}").And.Contain("reloading (SIGHUP)").And.Contain("stopped (exit 0)"));
    }

    [Test]
    public void AStackTrace_StaysAnErrorOnEveryLine()
    {
        string unit = Install("throws", ExampleDaemon.Program, $"run --port {ExampleDaemon.FreePort()} --simulate-fault startup-throws");
        Assert.That(Systemd.Exec("systemctl", "start", unit).ExitCode, Is.Not.Zero);
        Assert.That(WaitForMessage(unit, Example, "   at "), Is.True);

        string[] lines = Messages(unit, Example);
        string[] errors = Messages(unit, Example, "-p", "err");
        Assert.That(lines[0], Is.EqualTo("starting"));
        Assert.That(errors, Is.EqualTo(lines.Skip(1).ToArray()), "the failure, its exception and each frame of its stack");
        Assert.That(errors[0], Is.EqualTo("error: startup failed: simulated startup fault"));
        Assert.That(errors, Has.Some.StartsWith("   at Daemon.Example.EchoDaemon.OnStartupAsync"));
    }

    [Test]
    public void AFailedStartup_IsInSystemctlStatus_WithItsErrno_AndFailsTheStartAtOnce()
    {
        int port = ExampleDaemon.FreePort();
        using var squatter = new TcpListener(IPAddress.Loopback, port);
        squatter.Start();
        string unit = Install("busy", ExampleDaemon.Program, $"run --port {port}", "TimeoutStartSec=90");

        var watch = Stopwatch.StartNew();
        CommandResult start = Systemd.Exec("systemctl", "start", unit);
        watch.Stop();

        Assert.That(start.ExitCode, Is.Not.Zero, start.ToString());
        Assert.That(Systemd.Show(unit, "Result"), Is.EqualTo("exit-code"), "failed with the daemon, not at TimeoutStartSec=");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "well before TimeoutStartSec=90");
        string reason = $"cannot listen on 127.0.0.1:{port}: Address already in use";
        Assert.That(Systemd.Show(unit, "StatusText"), Is.EqualTo(reason));
        Assert.That(Systemd.Show(unit, "StatusErrno"), Is.EqualTo("98"));
        CommandResult status = Systemd.Exec("systemctl", "--no-pager", "status", unit);
        Assert.That(status.Output, Does.Contain($"Status: \"{reason}\""), status.ToString());
    }

    [Test]
    public void AStartupHookSlowerThanTimeoutStartSec_IsGivenTime_AndTheUnitBecomesActive()
    {
        // 12 s against TimeoutStartSec=8: without EXTEND_TIMEOUT_USEC, systemd kills it at 8 s. The
        // first one, 2 s after the hook began, must come before that, with the program's own start
        // (6 s for a JIT runtime to reach its hook, on a busy machine).
        int port = ExampleDaemon.FreePort();
        string unit = Install("slow", ExampleDaemon.Program, $"run --port {port} --startup-delay 12", "TimeoutStartSec=8");
        Systemd.Systemctl("start", unit);

        Assert.That(Systemd.Show(unit, "ActiveState"), Is.EqualTo("active"));
        Assert.That(Systemd.Show(unit, "Result"), Is.EqualTo("success"));
        using (var client = new EchoClient(port))
        {
            Assert.That(client.Echo("served", timeoutMilliseconds: 30000), Is.EqualTo("served"));
        }

        Assert.That(Messages(unit, Example), Has.Some.StartsWith("startup: taking more than 2 s; EXTEND_TIMEOUT_USEC of 5 s every 2 s, until the ready timeout (30 s)"));
        Systemd.Systemctl("stop", unit);
    }

    [Test]
    public void AStuckStartupHook_IsExtended_ButNoFurtherThanTheReadyTimeout()
    {
        // A hook that would take 10 minutes: extended past TimeoutStartSec=8, up to --ready-timeout
        // (14 s after the daemon began), then timed out by systemd. Unbounded, the start would outlast
        // the minute Exec waits for systemctl.
        string unit = Install("stuck", ExampleDaemon.Program, $"run --port {ExampleDaemon.FreePort()} --startup-delay 600 --ready-timeout 14", "TimeoutStartSec=8");
        var watch = Stopwatch.StartNew();
        CommandResult start = Systemd.Exec("systemctl", "start", unit);
        watch.Stop();

        Assert.That(start.ExitCode, Is.Not.Zero, start.ToString());
        Assert.That(Systemd.Show(unit, "Result"), Is.EqualTo("timeout"));
        Assert.That(watch.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(10)), "extended past TimeoutStartSec=8");
        Assert.That(Messages(unit, Example), Has.Some.StartsWith("startup: taking more than 2 s; EXTEND_TIMEOUT_USEC of 5 s every 2 s, until the ready timeout (14 s)"));
    }

    [Test]
    public void HostedDaemon_UnderTheJournal_LogsThroughTheSystemdFormatter()
    {
        string program = Path.Combine(AppContext.BaseDirectory, Hosted);
        string unit = Install("hosted", program, "run");
        Systemd.Systemctl("start", unit);
        Assert.That(WaitForMessage(unit, Hosted, "heartbeat 1: alive"), Is.True, string.Join('\n', Messages(unit, Hosted)));
        Systemd.Systemctl("stop", unit);

        // One line per entry, its category first: no timestamp of its own.
        Assert.That(Messages(unit, Hosted, "-p", "info..info"), Has.Some.Match(@"^Daemon\.Example\.Hosted\.HeartbeatService\[\d+\] heartbeat 1: alive$"));

        string failing = Install("hosted-fails", program, "run", "Environment=Heartbeat__IntervalMilliseconds=0");
        Assert.That(Systemd.Exec("systemctl", "start", failing).ExitCode, Is.Not.Zero);
        Assert.That(WaitForMessage(failing, Hosted, "Hosting failed to start"), Is.True);
        Assert.That(Messages(failing, Hosted, "-p", "err"), Has.Some.StartsWith("Microsoft.Extensions.Hosting.Internal.Host[11] Hosting failed to start"), "the host's own error, at its level");
        Assert.That(Systemd.Show(failing, "StatusText"), Is.EqualTo("startup failed: Heartbeat:IntervalMilliseconds must be above 0, not 0"));
    }

    /// <summary>Installs a Type=notify unit running <paramref name="program"/> with <paramref name="arguments"/>; its name.</summary>
    private string Install(string name, string program, string arguments, params string[] serviceLines)
    {
        string unit = $"daemon-net-{name}.service";
        Systemd.Install(unit, $"""
            [Service]
            Type=notify
            ExecStart={program} {arguments}
            ExecReload=/bin/kill -HUP $MAINPID
            Environment=DOTNET_EnableDiagnostics=0
            {string.Join('\n', serviceLines)}
            """);
        return unit;
    }

    /// <summary>
    /// The messages <paramref name="identifier"/> (the program's name) logged in
    /// <paramref name="unit"/>, one per journal entry as <c>journalctl -o cat</c> shows them, with
    /// <paramref name="options"/> (such as <c>-p warning</c>).
    /// </summary>
    private string[] Messages(string unit, string identifier, params string[] options)
    {
        CommandResult journal = Systemd.Exec(new[] { "journalctl", "--no-pager", "-o", "cat", "-u", unit, "-t", identifier }.Concat(options).ToArray());
        Assert.That(journal.ExitCode, Is.EqualTo(0), journal.ToString());
        return journal.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>True once a message of <paramref name="identifier"/> in <paramref name="unit"/> contains <paramref name="text"/>: the journal takes a stream's lines a moment after they are written.</summary>
    private bool WaitForMessage(string unit, string identifier, string text) =>
        ExampleDaemon.Eventually(() => Messages(unit, identifier).Any(line => line.Contains(text, StringComparison.Ordinal)), TimeSpan.FromSeconds(30), pollMilliseconds: 100);
}
