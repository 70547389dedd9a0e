using System.Runtime.InteropServices;
using Daemon;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The example published with Native AOT, as users deploy it: a clean publish (no trimming or AOT
/// warning), a daemon started through the native detach stage linked into the executable, and
/// the executable copied alone, without Mono.Posix's helper, which only --user and --group need.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class NativeAotTests : DaemonFixture
{
    private static string _folder = null!;
    private static string _binary = null!;
    private static string _publishOutput = null!;

    [OneTimeSetUp]
    public static void PublishTheExample()
    {
        _folder = TestEnvironment.CreateTestFolder("aot");
        _publishOutput = Publish(Path.Combine(TestEnvironment.RepositoryRoot, "Daemon.Example", "Daemon.Example.csproj"), _folder);
        _binary = Path.Combine(_folder, "out", "Daemon.Example");
    }

    /// <summary>
    /// Publishes <paramref name="project"/> with Native AOT for this machine into
    /// <paramref name="folder"/>/out (its intermediate files and temp folders in <paramref name="folder"/>
    /// too), failing the test when the publish fails; returns its output.
    /// </summary>
    internal static string Publish(string project, string folder)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true }.WithoutDiagnostics();
        foreach (string arg in new[] { "publish", project, "-c", "Release", "-r", RuntimeIdentifier, "-o", Path.Combine(folder, "out"),
            "--artifacts-path", Path.Combine(folder, "artifacts"), "-p:TreatWarningsAsErrors=false", "-nodeReuse:false" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        // NuGetScratch and MSBuild's temp folders: in the publish folder, removed with it.
        start.Environment["TMPDIR"] = Directory.CreateDirectory(Path.Combine(folder, "tmp")).FullName;
        using Process publish = Process.Start(start)!;
        var error = publish.StandardError.ReadToEndAsync();
        string output = publish.StandardOutput.ReadToEnd() + error.Result;
        Assert.That(publish.WaitForExit(600_000), Is.True, "publish finished");
        Assert.That(publish.ExitCode, Is.EqualTo(0), output);
        return output;
    }

    /// <summary>
    /// This machine's runtime identifier, for a native executable that runs here: the runtime's own
    /// when it is a portable one (linux-x64, linux-musl-arm64...), else linux- and the architecture.
    /// </summary>
    private static string RuntimeIdentifier =>
        RuntimeInformation.RuntimeIdentifier is { } rid && rid.StartsWith("linux-", StringComparison.Ordinal)
            ? rid
            : "linux-" + RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();

    [OneTimeTearDown]
    public static void RemoveThePublishFolder()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    protected override ExampleDaemon CreateDaemon() => new(_binary, "aotd", takesPort: true);

    [Test]
    public void Publish_GivesNoTrimmingOrAotWarning()
    {
        string[] warnings = _publishOutput.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"\bwarning [A-Z]+\d+")).ToArray();
        Assert.That(_publishOutput, Does.Contain("Daemon.Example ->"), "the publish output was read");
        Assert.That(warnings, Is.Empty, string.Join("\n", warnings));
        Assert.That(File.Exists(Path.Combine(_folder, "out", "libMonoPosixHelper.so")), Is.True, "Mono.Posix's native helper is published next to the binary");
    }

    [TestCase("detach", "3:1", "3>/dev/null")]
    [TestCase("detach", "3:1", "3> >(cat >/dev/null)")]
    [TestCase("detach", "3", "3>/dev/null")]
    [TestCase("daemon", "3:1", "3>/dev/null")]
    public void NativeDetachStage_IgnoresAStageMarkerFromTheCaller(string stage, string fd, string redirection)
    {
        // The C constructor runs before the runtime: it too must take the marker only with the launcher's pipe.
        string script = $"DAEMON_NET_STAGE={stage} DAEMON_NET_READY_FD={fd} \"$0\" status \"$@\" {redirection}; echo \"status=$?\"";
        CommandResult result = _daemon.Exec(new[] { "-c", script, _binary }.Concat(_daemon.CommonOptions), null, "/bin/bash");
        Assert.That(result.Output, Is.EqualTo("not running\nstatus=3\n"), result.ToString());
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void NativeDetachStage_GivesAProperDaemon()
    {
        string options = string.Join(' ', _daemon.CommonOptions.Select(a => $"'{a}'"));
        CommandResult started = _daemon.Exec(new[] { "-c", $"trap '' HUP; exec 7>'{Path.Combine(_daemon.Folder, "leak")}'; exec '{_binary}' start {options}" }, null, "/bin/bash");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();

        string[] stat = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var targets = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(f => new FileInfo(f).LinkTarget ?? "").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(int.Parse(stat[3]), Is.Not.EqualTo(pid), "not a session leader");
            Assert.That(int.Parse(stat[4]), Is.EqualTo(0), "no controlling terminal");
            Assert.That(ExampleDaemon.StatusField(pid, "SigBlk"), Is.EqualTo("0000000000000000"), "no signal blocked");
            Assert.That(Convert.ToUInt64(ExampleDaemon.StatusField(pid, "SigIgn"), 16) & 1, Is.EqualTo(0UL), "SIGHUP not ignored");
            Assert.That(new FileInfo($"/proc/{pid}/fd/0").LinkTarget, Is.EqualTo("/dev/null"));
            Assert.That(targets, Has.None.EqualTo(Path.Combine(_daemon.Folder, "leak")), "the shell's descriptor is closed");
            Assert.That(File.ReadAllText($"/proc/{pid}/comm").Trim(), Is.EqualTo("Daemon.Example"), "named after the program, as top and pgrep show it");
        });
        Assert.That(_daemon.Echo("aot"), Is.EqualTo("aot"));

        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.WaitForLog("reloading (SIGHUP)"), Is.True, _daemon.Log);
        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void CopiedAlone_RunsEveryCommand_WithoutTheHelper()
    {
        _daemon.ProgramPath = CopyAlone();
        int first = _daemon.Start();
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {first})"));
        Assert.That(_daemon.Echo("alone"), Is.EqualTo("alone"));

        CommandResult reloaded = _daemon.Run("reload");
        Assert.That(reloaded.ExitCode, Is.EqualTo(0), reloaded.ToString());
        Assert.That(_daemon.WaitForLog("reloading (SIGHUP)"), Is.True, _daemon.Log);

        // A handover to a new generation: SCM_RIGHTS without Mono.Posix.
        CommandResult restarted = _daemon.Run("restart");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int second = _daemon.ReadPid();
        Assert.That(second, Is.Not.EqualTo(first), "a new generation");
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {second}; pid {first} hands over and drains)\n"), "the pid file names the new one");
        Assert.That(_daemon.WaitForLog($"handing 1 listener(s) over to pid {second}"), Is.True, _daemon.Log);
        Assert.That(_daemon.Echo("handed over"), Is.EqualTo("handed over"));
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(30)), Is.True, "the old generation drains and exits");
        Assert.That(_daemon.Echo("still there"), Is.EqualTo("still there"));

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(stopped.Error, Is.Empty);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void DaemonWithoutUser_NeverMapsTheHelper_EvenBesideIt()
    {
        Assert.That(File.Exists(Path.Combine(_folder, "out", "libMonoPosixHelper.so")), Is.True, "the helper is next to the binary");
        int first = _daemon.Start();
        Assert.That(_daemon.Echo("served"), Is.EqualTo("served"));
        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.WaitForLog("reloaded"), Is.True, _daemon.Log);
        Assert.That(MapsTheHelper(first), Is.False, "the daemon, having served and reloaded");
        Assert.That(_daemon.Run("restart").ExitCode, Is.EqualTo(0));
        int second = _daemon.ReadPid();
        Assert.That(second, Is.Not.EqualTo(first));
        Assert.That(MapsTheHelper(second), Is.False, "the next generation");
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void DaemonWithUser_MapsTheHelper()
    {
        // The other side of the test above: what it looks for is there when --user needs it.
        TestEnvironment.RequireRoot();
        int pid = _daemon.Start("--user", "nobody");
        Assert.That(MapsTheHelper(pid), Is.True);
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    [TestCase("start", "--user", "nobody")]
    [TestCase("start", "--group", "nogroup")]
    [TestCase("run", "--user", "nobody")]
    public void CopiedAlone_WithUserOrGroup_FailsBeforeAnythingStarts(string command, string option, string value)
    {
        CommandResult result = _daemon.Exec(new[] { command }.Concat(_daemon.CommonOptions).Concat(new[] { option, value }), null, CopyAlone());
        AssertRefusedForTheHelper(result);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "no daemon");
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "no pid file");
        Assert.That(File.Exists(_daemon.LogFile), Is.False, "no log: nothing started");
    }

    [Test]
    public void CopiedAlone_RestartWithUser_LeavesTheRunningDaemonAlone()
    {
        _daemon.ProgramPath = CopyAlone();
        int pid = _daemon.Start();
        AssertRefusedForTheHelper(_daemon.Run("restart", "--user", "nobody"));
        Assert.That(_daemon.ReadPid(), Is.EqualTo(pid), "the pid file still names it");
        Assert.That(ExampleDaemon.IsAlive(pid), Is.True, "not stopped");
        Assert.That(_daemon.Echo("untouched"), Is.EqualTo("untouched"));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void ClosedStandardStreams_AreOnDevNull_BeforeTheRuntimeStarts()
    {
        // Without this, the runtime's first descriptors (/dev/urandom, its pipes) take 0 and 1, and
        // what the program writes to "standard output" goes into them.
        // No --log-file: 1 and 2 stay what the caller gave (closed, and a file).
        string errors = Path.Combine(_daemon.Folder, "run.err");
        string options = $"--pid-file '{_daemon.PidFile}' --port {_daemon.Port}";
        var start = new ProcessStartInfo("/bin/bash") { UseShellExecute = false }.WithoutDiagnostics();
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec 0<&- 1>&-; exec '{_binary}' run {options} 2>'{errors}'");
        using Process run = Process.Start(start)!;
        try
        {
            Assert.That(ExampleDaemon.Eventually(() => File.Exists(errors) && File.ReadAllText(errors).Contains(": ready", StringComparison.Ordinal)), Is.True, "ready");
            Assert.Multiple(() =>
            {
                Assert.That(new FileInfo($"/proc/{run.Id}/fd/0").LinkTarget, Is.EqualTo("/dev/null"));
                Assert.That(new FileInfo($"/proc/{run.Id}/fd/1").LinkTarget, Is.EqualTo("/dev/null"));
                Assert.That(new FileInfo($"/proc/{run.Id}/fd/2").LinkTarget, Is.EqualTo(errors));
            });
            Assert.That(_daemon.Echo("still serving"), Is.EqualTo("still serving"));
        }
        finally
        {
            if (!run.HasExited)
            {
                Mono.Unix.Native.Syscall.kill(run.Id, Mono.Unix.Native.Signum.SIGTERM);
            }

            Assert.That(run.WaitForExit(10_000), Is.True);
        }

        Assert.That(run.ExitCode, Is.EqualTo(0), File.ReadAllText(errors));
    }

    [Test]
    public void NativeDetachStage_ReportsTheDaemonsFailure()
    {
        using var squatter = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        squatter.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, _daemon.Port));
        squatter.Listen(1);
        CommandResult started = _daemon.Run("start");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: cannot listen on 127.0.0.1:{_daemon.Port}: Address already in use\n"));
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [TestCase(8)]
    [TestCase(9)]
    [TestCase(10)]
    public void LowDescriptorLimit_EachCommandSaysOneClearLine(int limit)
    {
        CommandResult started = Limited(limit, "start");
        AssertSilentOrOneClearLine(started, ExitCodes.Failure, "start");
        if (started.ExitCode != 0)
        {
            _daemon.Start();
        }

        AssertSilentOrOneClearLine(Limited(limit, "status"), ExitCodes.Unknown, "status");
        CommandResult stopped = Limited(limit, "stop");
        AssertSilentOrOneClearLine(stopped, ExitCodes.Failure, "stop");
        if (stopped.ExitCode != 0)
        {
            Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
        }

        // run in the foreground: either it fails with one line, or it serves and stops on SIGTERM.
        int readyBefore = ReadyLines();
        using Process run = _daemon.LaunchUnderLimit($"-n {limit}", _binary, new[] { "run" }.Concat(_daemon.CommonOptions));
        var error = run.StandardError.ReadToEndAsync();
        Assert.That(ExampleDaemon.Eventually(() => run.HasExited || ReadyLines() > readyBefore, TimeSpan.FromSeconds(60)), Is.True, "run ended or became ready");
        if (!run.HasExited)
        {
            Assert.That(Mono.Unix.Native.Syscall.kill(run.Id, Mono.Unix.Native.Signum.SIGTERM), Is.EqualTo(0));
        }

        Assert.That(run.WaitForExit(60_000), Is.True, "run exited");
        AssertSilentOrOneClearLine(new CommandResult(run.ExitCode, "", error.Result), ExitCodes.Failure, "run");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "nothing left running");
    }

    [TestCase(20_000)]
    [TestCase(60_000)]
    [TestCase(150_000)]
    public void LowAddressSpaceLimit_EachCommandSaysOneClearLine(int kibibytes)
    {
        // Below the floor the runtime crashed at random (exit 255 without a word, SIGSEGV, SIGABRT).
        foreach (string command in new[] { "start", "status", "stop", "run" })
        {
            CommandResult result = _daemon.ExecUnderLimit($"-v {kibibytes}", _binary, new[] { command }.Concat(_daemon.CommonOptions));
            Assert.That(result.ExitCode, Is.EqualTo(command == "status" ? ExitCodes.Unknown : ExitCodes.Failure), command + ": " + result);
            Assert.That(result.Error, Is.EqualTo($"Daemon.Example: the address-space limit (ulimit -v) is {kibibytes} KiB, below the 327680 KiB the .NET runtime needs to start; raise it\n"), command);
        }

        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    /// <summary>The published executable alone, without libMonoPosixHelper.so, in a folder of this test.</summary>
    private string CopyAlone()
    {
        string alone = Directory.CreateDirectory(Path.Combine(_daemon.Folder, "alone")).FullName;
        string copy = Path.Combine(alone, "Daemon.Example");
        File.Copy(_binary, copy);
        return copy;
    }

    private static bool MapsTheHelper(int pid) => File.ReadAllText($"/proc/{pid}/maps").Contains("libMonoPosixHelper", StringComparison.Ordinal);

    /// <summary>Today's one line, the documented exit code, and nothing on standard output.</summary>
    private static void AssertRefusedForTheHelper(CommandResult result)
    {
        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.NotInstalled), result.ToString());
        // The folder as the kernel resolved it (a symbolic link on the way would be followed).
        Assert.That(result.Error, Does.Match(@"^Daemon\.Example: cannot load libMonoPosixHelper\.so, Mono\.Posix's native helper: it must be in /\S*/alone\n$"));
        Assert.That(result.Output, Is.Empty);
    }

    private int ReadyLines() => _daemon.Log.Split(": ready").Length - 1;

    private CommandResult Limited(int limit, string command) =>
        _daemon.ExecUnderLimit($"-n {limit}", _binary, new[] { command }.Concat(_daemon.CommonOptions));

    /// <summary>
    /// Under a low limit a command may still work, and then says nothing on standard error; when it
    /// fails, it says one clear line with its documented code, and a line that points at the log
    /// finds something there.
    /// </summary>
    private void AssertSilentOrOneClearLine(CommandResult result, int failureCode, string command)
    {
        string context = $"{command}\nlog:\n{_daemon.Log}";
        if (result.ExitCode == ExitCodes.Success || (command == "status" && result.ExitCode == ExitCodes.NotRunning))
        {
            Assert.That(result.Error, Is.Empty, $"{context}\n{result}");
            return;
        }

        string line = result.AssertOneClearLine(failureCode, context);
        if (line.Contains("(see ", StringComparison.Ordinal))
        {
            Assert.That(_daemon.Log, Is.Not.Empty, $"a message that points at the log finds something there: {context}\n{result}");
        }
    }
}
