using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>What an administrator needs in service: privilege drop, log rotation, reload, systemd.</summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ProductionTests : DaemonFixture
{
    protected override string FolderLabel => "prod";

    [Test]
    public void User_DropsToNobody_AfterBinding_WithItsGroups()
    {
        TestEnvironment.RequireRoot();
        Passwd nobody = Syscall.getpwnam("nobody");
        int pid = _daemon.Start("--user", "nobody");

        string expectedGroups = string.Join(' ', Syscall.getgrouplist("nobody").Select(g => g.gr_gid).Order());
        Assert.Multiple(() =>
        {
            Assert.That(ExampleDaemon.StatusField(pid, "Uid"), Is.EqualTo(string.Join('\t', Enumerable.Repeat(nobody.pw_uid, 4))), "real, effective, saved, fs uid");
            Assert.That(ExampleDaemon.StatusField(pid, "Gid"), Is.EqualTo(string.Join('\t', Enumerable.Repeat(nobody.pw_gid, 4))), "gids");
            Assert.That(string.Join(' ', ExampleDaemon.StatusField(pid, "Groups").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(uint.Parse).Order()), Is.EqualTo(expectedGroups), "supplementary groups");
            Assert.That(TestEnvironment.Owner(_daemon.LogFile), Is.EqualTo(nobody.pw_uid), "the log stays writable after the drop");
            Assert.That(TestEnvironment.Owner(_daemon.PidFile), Is.EqualTo(0u), "the pid file stays root's");
            Assert.That(Mode(_daemon.PidFile), Is.EqualTo("644"), "and is not writable by the daemon's user");
        });
        Assert.That(_daemon.Echo("dropped"), Is.EqualTo("dropped"));

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "root's stop removes the file the daemon could not");
        Assert.That(_daemon.Log, Does.Contain("stopped (exit 0)"));
    }

    [Test]
    public void Restart_OfADaemonThatDroppedToNobody_HandsOverToTheNextGeneration()
    {
        // root starts it, it runs as nobody; root's restart starts the next generation as root,
        // which must trust the running daemon (the pid file's lock holder) although it is nobody.
        TestEnvironment.RequireRoot();
        Passwd nobody = Syscall.getpwnam("nobody");
        int first = _daemon.Start("--user", "nobody");

        CommandResult restarted = _daemon.Run("restart", "--user", "nobody");

        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted + _daemon.Log);
        int second = _daemon.ReadPid();
        Assert.That(second, Is.Not.EqualTo(first));
        Assert.That(restarted.Output, Does.StartWith($"restarted (pid {second}; pid {first} hands over"));
        Assert.That(ExampleDaemon.StatusField(second, "Uid"), Is.EqualTo(string.Join('\t', Enumerable.Repeat(nobody.pw_uid, 4))));
        Assert.That(_daemon.Log, Does.Contain($"taking over from pid {first}: 1 listener(s) handed over"));
        Assert.That(_daemon.Echo("next generation"), Is.EqualTo("next generation"));
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(60)), Is.True, "the old generation drains and exits");

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
    }

    [TestCase("--user", "root")]
    [TestCase("--group", "root")]
    public void Start_Refuses_AnotherUserOrGroup_WhenNotRoot(string option, string value)
    {
        TestEnvironment.RequireRoot();   // to become nobody first
        string setpriv = TestEnvironment.RequireTool("/usr/bin/setpriv");
        string program = TestEnvironment.CopyForAnotherUser(ExampleDaemon.Program, _daemon.Folder);
        var args = new[] { "--reuid=65534", "--regid=65534", "--clear-groups", program, "start" }
            .Concat(_daemon.CommonOptions).Concat(new[] { option, value });
        CommandResult started = _daemon.Exec(args, null, setpriv);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo("Daemon.Example: only root can run the daemon as another user or group (you are uid 65534)\n"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [TestCase("--user", "no-such-user-9z", "unknown user 'no-such-user-9z'")]
    [TestCase("--group", "no-such-group-9z", "unknown group 'no-such-group-9z'")]
    public void Start_Fails_ForAnUnknownUserOrGroup_LeavingNothing(string option, string value, string message)
    {
        CommandResult started = _daemon.Run("start", option, value);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: {message}\n"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void Logrotate_WithTheShippedSnippet_LosesNoLine()
    {
        string logrotate = TestEnvironment.RequireTool("/usr/sbin/logrotate");
        _daemon.Start();
        Assert.That(_daemon.Echo("before"), Is.EqualTo("before"));

        string snippet = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "Daemon.Example", "deploy", "daemon-example.logrotate"))
            .Replace("/var/log/daemon-example.log", _daemon.LogFile, StringComparison.Ordinal)
            .Replace("/usr/local/bin/Daemon.Example", ExampleDaemon.Program, StringComparison.Ordinal)
            .Replace("/run/daemon-example.pid", _daemon.PidFile, StringComparison.Ordinal)
            .Replace("create 0640 nobody nogroup", "create 0640 root root", StringComparison.Ordinal);
        string config = Path.Combine(_daemon.Folder, "logrotate.conf");
        File.WriteAllText(config, snippet);
        Run(logrotate, "-f", "-s", Path.Combine(_daemon.Folder, "logrotate.state"), config);

        Assert.That(ExampleDaemon.Eventually(() => File.Exists(_daemon.LogFile) && _daemon.Log.Contains("reloading (SIGHUP)", StringComparison.Ordinal)), Is.True, "the daemon reopened its log at its path");
        Assert.That(_daemon.Echo("after"), Is.EqualTo("after"));
        Assert.That(ExampleDaemon.Eventually(() => _daemon.Log.Contains("connection 2 from", StringComparison.Ordinal)), Is.True, "new lines land in the new file");

        string rotated = File.ReadAllText(_daemon.LogFile + ".1");
        Assert.That(rotated, Does.Contain("connection 1 from"), "old lines stay in the rotated file");
        Assert.That(rotated, Does.Not.Contain("connection 2 from"));
        Assert.That(_daemon.Log, Does.Not.Contain("connection 1 from"));
    }

    [Test]
    public void Reload_RereadsTheGreeting()
    {
        string greeting = Path.Combine(_daemon.Folder, "greeting.txt");
        File.WriteAllText(greeting, "hello v1\n");
        _daemon.Start("--greeting-file", greeting);
        Assert.That(_daemon.Echo("x"), Does.StartWith("hello v1"));

        File.WriteAllText(greeting, "hello v2\n");
        Assert.That(_daemon.Run("reload", "--greeting-file", greeting).ExitCode, Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => _daemon.Log.Contains("reloaded greeting", StringComparison.Ordinal)), Is.True, _daemon.Log);
        Assert.That(_daemon.Echo("y"), Does.StartWith("hello v2"));
    }

    [TestCase(false, TestName = "Run_SpeaksSdNotify_OnAPathSocket")]
    [TestCase(true, TestName = "Run_SpeaksSdNotify_OnAnAbstractSocket")]
    public void Run_SpeaksSdNotify(bool abstractSocket)
    {
        string name = abstractSocket ? "@daemon-net-test-" + Guid.NewGuid().ToString("N")[..8] : Path.Combine(_daemon.Folder, "notify.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(abstractSocket ? "\0" + name[1..] : name));
        socket.ReceiveTimeout = 10_000;

        using Process run = _daemon.StartForeground(new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = name });
        Assert.That(Receive(socket), Is.EqualTo($"READY=1\nMAINPID={run.Id}"));
        Assert.That(Receive(socket), Is.EqualTo("FDSTORE=1\nFDNAME=stored.echo"), "its listener, for systemd's fd store");

        Syscall.kill(run.Id, Signum.SIGHUP);
        string reloading = Receive(socket);
        Assert.That(reloading, Does.Match(@"^RELOADING=1\nMONOTONIC_USEC=\d+$"));
        long usec = long.Parse(reloading.Split('=')[2]);
        Assert.That(usec, Is.EqualTo(Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000)).Within(60_000_000), "CLOCK_MONOTONIC, in microseconds");
        Assert.That(Receive(socket), Does.StartWith("READY=1"));

        Syscall.kill(run.Id, Signum.SIGTERM);
        Assert.That(Receive(socket), Is.EqualTo("STOPPING=1"));
        Assert.That(run.WaitForExit(10_000), Is.True);
        Assert.That(run.ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void Run_WithoutNotifySocket_WorksAndSaysNothing()
    {
        using Process run = _daemon.StartForeground(new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = null });
        Syscall.kill(run.Id, Signum.SIGINT);
        Assert.That(run.WaitForExit(10_000), Is.True);
        Assert.That(run.ExitCode, Is.EqualTo(0), "SIGINT is a clean stop too");
    }

    [Test]
    public void Run_AsPid1InAContainer_StopsCleanlyOnSigterm()
    {
        TestEnvironment.RequireRoot();
        using Process unshare = _daemon.StartForeground(null, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", ExampleDaemon.Program);
        int inner = int.Parse(File.ReadAllText($"/proc/{unshare.Id}/task/{unshare.Id}/children").Trim());
        _daemon.Track(inner);
        Assert.That(File.ReadAllText($"/proc/{inner}/status"), Does.Contain("NSpid:\t" + inner + "\t1"), "PID 1 of its namespace");

        Syscall.kill(inner, Signum.SIGTERM);
        Assert.That(unshare.WaitForExit(10_000), Is.True);
        Assert.That(unshare.ExitCode, Is.EqualTo(0), unshare.StandardError.ReadToEnd());
    }

    [Test]
    public void SystemdUnits_PassSystemdAnalyzeVerify()
    {
        string analyze = TestEnvironment.RequireTool("/usr/bin/systemd-analyze");
        var units = new List<string>();
        foreach (string unit in ShippedUnits())
        {
            // verify checks that ExecStart exists: point it at the program under test.
            string copy = Path.Combine(_daemon.Folder, Path.GetFileName(unit));
            File.WriteAllText(copy, TestEnvironment.WithProgramsUnderTest(File.ReadAllText(unit)));
            units.Add(copy);
        }

        Assert.That(units.Select(Path.GetFileName), Is.EquivalentTo(new[]
        {
            "daemon-example.service", "daemon-example-forking.service", "daemon-example-activated.service", "daemon-example.socket",
            "daemon-example-web.service", "daemon-example-upgrade.service", "daemon-template-program.service", "daemon-template-program-forking.service", "daemon-template-program-upgrade.service",
        }));
        string Text(string name) => File.ReadAllText(units.Single(u => Path.GetFileName(u) == name));
        Assert.That(Text("daemon-example-forking.service"), Does.Contain("Type=forking").And.Contain("PIDFile=").And.Contain(" start "));
        Assert.That(Text("daemon-example-activated.service"), Does.Contain("Type=notify").And.Contain(" run ").And.Contain("WatchdogSec="));
        Assert.That(Text("daemon-example.socket"), Does.Contain("ListenStream=127.0.0.1:8007").And.Contain("FileDescriptorName=echo"));
        foreach (string notify in new[] { "daemon-example.service", "daemon-example-web.service", "daemon-template-program.service" })
        {
            // The fd store is what makes `systemctl restart` refuse nothing; FileDescriptorStorePreserve= is unknown to systemd 252.
            Assert.That(Text(notify), Does.Contain("Type=notify").And.Contain(" run").And.Match(@"\nFileDescriptorStoreMax=[1-9]").And.Not.Match(@"\nFileDescriptorStorePreserve="), notify);
        }

        Assert.That(Text("daemon-example.service"), Does.Contain("WatchdogSec="));
        Assert.That(Text("daemon-example-upgrade.service"), Does.Contain("\nNotifyAccess=all\n").And.Contain("\nExecReload=/").And.Contain(" restart --port 8007 --pid-file /run/daemon-example-upgrade/"),
            "the overlapping upgrade: ExecReload= runs restart with ExecStart='s options");
        foreach (string watched in units.Where(u => File.ReadAllText(u).Contains("\nWatchdogSec=", StringComparison.Ordinal)))
        {
            // systemd's default SIGABRT leaves a .NET process running (dotnet/runtime#99495) until TimeoutStopSec=.
            Assert.That(File.ReadAllText(watched), Does.Contain("\nWatchdogSignal=SIGTERM\n"), Path.GetFileName(watched));
        }

        (int code, string output) = Run(analyze, new[] { "verify" }.Concat(units).ToArray());
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Not.Contain("daemon-example").And.Not.Contain("daemon-template-program"), "no warning about our units");
    }

    /// <summary>Every systemd unit the repository ships: the examples' and the template's.</summary>
    private static IEnumerable<string> ShippedUnits() =>
        new[] { "Daemon.Example", "Daemon.Example.Web", Path.Combine("templates", "content", "daemon") }
            .Select(project => Path.Combine(TestEnvironment.RepositoryRoot, project, "deploy"))
            .SelectMany(folder => Directory.GetFiles(folder, "*.service").Concat(Directory.GetFiles(folder, "*.socket")));

    private static string Receive(Socket socket)
    {
        var buffer = new byte[4096];
        int n = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    /// <summary>Runs a tool with the test's harness; its stdout and then its stderr.</summary>
    private (int Code, string Output) Run(string program, params string[] args)
    {
        CommandResult result = _daemon.Exec(args, null, program);
        return (result.ExitCode, result.Output + result.Error);
    }

    private static string Mode(string path)
    {
        Syscall.stat(path, out Stat stat);
        return Convert.ToString((int)stat.st_mode & 0x1ff, 8);
    }
}
