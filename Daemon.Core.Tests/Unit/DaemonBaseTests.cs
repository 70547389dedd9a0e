using Daemon.Handover;
using Daemon.Launching;
using Daemon.Commands;
using Daemon.PidFiles;
using Daemon.Processes;
using Moq;

namespace Daemon.Core.Tests.Unit;

/// <summary>Every decision the commands make, driven through the OS seam without processes.</summary>
[TestFixture]
public sealed class DaemonBaseTests
{
    private const string PidPath = "/run/test.pid";
    private const int Pid = 4242;
    private Mock<IPidFileStore> _pidFiles = null!;
    private Mock<IProcessTable> _processes = null!;
    private Mock<IProcessHandle> _process = null!;
    private Mock<IDaemonLauncher> _launcher = null!;
    private StringWriter _out = null!;
    private StringWriter _err = null!;

    [SetUp]
    public void SetUp()
    {
        _pidFiles = new Mock<IPidFileStore>(MockBehavior.Strict);
        _processes = new Mock<IProcessTable>(MockBehavior.Strict);
        _process = new Mock<IProcessHandle>(MockBehavior.Strict);
        _launcher = new Mock<IDaemonLauncher>(MockBehavior.Strict);
        _process.SetupGet(p => p.Pid).Returns(Pid);
        _process.Setup(p => p.Dispose());
        _out = new StringWriter();
        _err = new StringWriter();
    }

    [TearDown]
    public void TearDown()
    {
        _out.Dispose();
        _err.Dispose();
    }

    private static readonly DateTimeOffset _now = new(2026, 11, 30, 6, 15, 15, TimeSpan.Zero);

    private TestDaemon CreateDaemon(bool isRoot = true, TimeZoneInfo? zone = null, Func<string?>? loadUserDatabase = null)
    {
        var system = new DaemonSystem(_pidFiles.Object, _processes.Object, _launcher.Object, _out, _err, isRoot, "/home/tester", new FixedClock(_now, zone ?? TimeZoneInfo.Utc))
        {
            LoadUserDatabase = loadUserDatabase ?? (() => null),
        };
        return new TestDaemon(system);
    }

    private void GivenRunningSince(DateTimeOffset? started, string? standardError)
    {
        _processes.Setup(p => p.StartTime(Pid)).Returns(started);
        _processes.Setup(p => p.StandardErrorTarget(Pid)).Returns(standardError);
    }

    private int Main(params string[] args) => CreateDaemon().Main(args);

    private static PidFileState Locked(int holder, int? recorded) => new(PidFileKind.Locked, holder, recorded, $"\"{recorded}\"", null);

    private static PidFileState Stale(int? recorded) => new(PidFileKind.Stale, 0, recorded, $"\"{recorded}\"", null);

    private void GivenPidFile(params PidFileState[] states)
    {
        var sequence = _pidFiles.SetupSequence(p => p.Inspect(PidPath));
        foreach (PidFileState state in states)
        {
            sequence = sequence.Returns(state);
        }
    }

    /// <summary>The pid a stale file names is nobody's now.</summary>
    private void GivenNoProcess() => _processes.Setup(p => p.Open(Pid)).Returns((IProcessHandle?)null);

    /// <summary>The pid a file names is a live process, running this program or not.</summary>
    private void GivenProcessRunning(ProgramMatch match)
    {
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _processes.Setup(p => p.RunsThisProgram(_process.Object)).Returns(match);
    }

    private void GivenStaleRemovalSucceeds()
    {
        string? none = null;
        _pidFiles.Setup(p => p.TryRemoveStale(PidPath, out none)).Returns(true);
    }

    // ---- status ---------------------------------------------------------------------------------

    [Test]
    public void Status_ReturnsNotRunning_WhenPidFileIsMissing()
    {
        GivenPidFile(PidFileState.Missing);
        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.NotRunning));
        Assert.That(_out.ToString().Trim(), Is.EqualTo("not running"));
    }

    [Test]
    public void Status_ReturnsDeadWithPidFile_WhenPidFileIsStale()
    {
        GivenPidFile(Stale(Pid));
        GivenNoProcess();
        Assert.That(Main("status", "--pid-file", PidPath, "--log-file", "/var/log/t.log"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_out.ToString(), Is.EqualTo($"not running, but pid file /run/test.pid is left (it names \"{Pid}\"): it died or was killed; see /var/log/t.log\n"));
    }

    [Test]
    public void Status_OfADeadDaemon_NamesNoLog_WhenNoLogFileIsGivenAndTheDefaultOneNeverSawIt()
    {
        GivenPidFile(Stale(Pid));
        GivenNoProcess();
        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_out.ToString(), Is.EqualTo($"not running, but pid file /run/test.pid is left (it names \"{Pid}\"): it died or was killed\n"), "no guess at the default log");
    }

    [Test]
    public void Status_SaysRunningWithANote_WhenAnUnlockedFileNamesALiveProcessOfThisProgram()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Same);
        GivenRunningSince(null, "/dev/null");

        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo($"running (pid {Pid})\n  pid file /run/test.pid, not locked by the daemon (another tool wrote it)\n  log file /dev/null\n"));
        _process.Verify(p => p.Signal(It.IsAny<int>()), Times.Never, "status signals nothing");
    }

    [Test]
    public void Status_IsDead_WhenAnUnlockedFileNamesAnotherProgram()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Other);

        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));

        Assert.That(_out.ToString(), Is.EqualTo($"not running, but pid file /run/test.pid is left (it names \"{Pid}\", now another program's pid): it died or was killed\n"));
    }

    [Test]
    public void Status_IsUnknown_WhenTheProcessAnUnlockedFileNamesCannotBeLookedAt()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Unknown);

        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Unknown));

        Assert.That(_err.ToString(), Is.EqualTo($"test: pid file /run/test.pid is not locked and names \"{Pid}\", a process whose program only root or its user can read: cannot tell whether it is this daemon\n"));
    }

    [Test]
    public void Status_ReturnsRunning_WhenALiveProcessHoldsTheLock()
    {
        GivenPidFile(Locked(Pid, Pid));
        GivenRunningSince(_now.AddMinutes(-3), "/var/log/test.log");
        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Split('\n')[0], Is.EqualTo($"running (pid {Pid})"), "the first line, alone, for scripts");
        Assert.That(_err.ToString(), Is.Empty);
    }

    [Test]
    public void Status_SaysSinceWhen_ThePidFile_AndTheLogFile_UnderTheFirstLine()
    {
        GivenPidFile(Locked(Pid, Pid));
        GivenRunningSince(_now - new TimeSpan(0, 3, 12), "/var/log/test.log");

        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo(
            $"running (pid {Pid})\n" +
            "  since 2026-11-30 06:12:03 UTC (3 min 12 s ago)\n" +
            "  pid file /run/test.pid\n" +
            "  log file /var/log/test.log\n"));
        _processes.Verify(p => p.Open(It.IsAny<int>()), Times.Never, "status signals nothing");
    }

    [Test]
    public void Status_GivesTheStartInTheLocalTimeZone_WithItsOffset()
    {
        GivenPidFile(Locked(Pid, Pid));
        GivenRunningSince(_now - TimeSpan.FromHours(26), "/var/log/test.log");
        TimeZoneInfo paris = TimeZoneInfo.CreateCustomTimeZone("test/plus-one", TimeSpan.FromHours(1), "plus one", "plus one");

        Assert.That(CreateDaemon(zone: paris).Main(["status", "--pid-file", PidPath]), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Does.Contain("\n  since 2026-11-29 05:15:15 +01:00 (1 day 2 h ago)\n"));
    }

    [TestCase("socket:[4711]", "  log file none (its stderr is socket:[4711])", TestName = "Status_SaysNoLogFile_ForADaemonWritingToTheJournal")]
    [TestCase("/dev/pts/3", "  log file none (its stderr is /dev/pts/3)", TestName = "Status_SaysNoLogFile_ForADaemonWritingToATerminal")]
    [TestCase("/srv/t.log", "  log file /srv/t.log", TestName = "Status_NamesTheFileTheDaemonWrites_EvenWhereTheCommandLineSaysOtherwise")]
    [TestCase("/var/log/test.log.1 (deleted)", "  log file /var/log/test.log.1 (deleted, still written: reload reopens the log at its path)", TestName = "Status_SaysTheLogWasDeleted_AfterARotationWithoutReload")]
    [TestCase("/var/log/x (deleted)\0", "  log file /var/log/x (deleted)", TestName = "Status_NamesALogCalledLikeADeletedOne_AsTheFileItIs")]
    [TestCase(null, "  log file /var/log/t.log", TestName = "Status_NamesTheGivenLogFile_WhenTheDaemonsDescriptorsCannotBeRead")]
    public void Status_NamesWhereTheDaemonLogs(string? standardError, string line)
    {
        GivenPidFile(Locked(Pid, Pid));
        GivenRunningSince(null, standardError);

        Assert.That(Main("status", "--pid-file", PidPath, "--log-file", "/var/log/t.log"), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo($"running (pid {Pid})\n  pid file /run/test.pid\n{line}\n"), "no 'since' line when the start time cannot be read");
    }

    [Test]
    public void Status_SaysTheLogIsUnknown_WhenTheDaemonsDescriptorsCannotBeRead_AndNoLogFileIsGiven()
    {
        GivenPidFile(Locked(Pid, Pid));
        GivenRunningSince(null, null);

        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Does.EndWith($"  log file unknown (only root and its user can read /proc/{Pid}/fd/2)\n"), "never the default log, a guess");
    }

    [Test]
    public void Status_QuotesAPathWithControlCharacters()
    {
        const string hostile = "/run/te\nst.pid";
        _pidFiles.Setup(p => p.Inspect(hostile)).Returns(Locked(Pid, Pid));
        GivenRunningSince(null, "/var/log/\u001b[31mred.log");

        Assert.That(Main("status", "--pid-file", hostile), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo($"running (pid {Pid})\n  pid file $'/run/te\\nst.pid'\n  log file $'/var/log/\\e[31mred.log'\n"));
    }

    [TestCase(0, "0 s")]
    [TestCase(59, "59 s")]
    [TestCase(60, "1 min 0 s")]
    [TestCase(3599, "59 min 59 s")]
    [TestCase(3600, "1 h 0 min")]
    [TestCase(86_399, "23 h 59 min")]
    [TestCase(86_400, "1 day 0 h")]
    [TestCase(3 * 86_400 + 4 * 3600 + 5, "3 days 4 h")]
    [TestCase(-2, "0 s")]
    public void StatusDuration_ShowsItsTwoLargestUnits(int seconds, string shown)
    {
        Assert.That(StatusDetails.Duration(TimeSpan.FromSeconds(seconds)), Is.EqualTo(shown));
    }

    [TestCase("2026-11-30T06:12:03.000+00:00 test[4242]: stopping (SIGTERM)\n", true, TestName = "DeadDaemonsLog_IsTheDefaultOne_WhenItsLastLinesComeFromThatPid")]
    [TestCase("2026-11-30T06:12:03.000+00:00 test[4243]: ready\n", false, TestName = "DeadDaemonsLog_IsNone_WhenTheDefaultOneShowsAnotherPid")]
    public void DeadDaemonsLog_IsNamedOnlyWhenKnown(string lines, bool named)
    {
        string log = Path.Combine(Path.GetTempPath(), $"dead-{Guid.NewGuid():N}.log");
        File.WriteAllText(log, new string('x', 100_000) + "\n" + lines);
        try
        {
            Assert.That(StatusDetails.LogOfDeadDaemon(null, log, "test", Pid), Is.EqualTo(named ? $"; see {log}" : ""));
            Assert.That(StatusDetails.LogOfDeadDaemon("/srv/given.log", log, "test", Pid), Is.EqualTo("; see /srv/given.log"), "the --log-file given is the admin's word");
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Test]
    public void Status_ReturnsUnknown_WhenPidFileIsUnusable()
    {
        GivenPidFile(PidFileState.Unusable("pid file /run/test.pid is a symbolic link; refusing to follow it"));
        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Unknown));
        Assert.That(_err.ToString().Trim(), Is.EqualTo("test: pid file /run/test.pid is a symbolic link; refusing to follow it"));
    }

    // ---- where messages go ----------------------------------------------------------------------

    [TestCase("stop", ExitCodes.Success)]
    [TestCase("status", ExitCodes.NotRunning)]
    [TestCase("reload", ExitCodes.ReloadNotRunning)]
    public void NotRunning_IsAStateOnStdout_ForEveryCommandThatSaysIt(string command, int exitCode)
    {
        GivenPidFile(PidFileState.Missing);
        Assert.That(Main(command, "--pid-file", PidPath), Is.EqualTo(exitCode));
        Assert.That(_out.ToString(), Is.EqualTo("not running\n"));
        Assert.That(_err.ToString(), Is.Empty);
    }

    [TestCase("start", ExitCodes.Failure)]
    [TestCase("stop", ExitCodes.Failure)]
    [TestCase("status", ExitCodes.Unknown)]
    [TestCase("reload", ExitCodes.Failure)]
    [TestCase("restart", ExitCodes.Failure)]
    public void AFailure_IsOneLineOnStderr_NamingTheDaemon_AndNothingOnStdout(string command, int exitCode)
    {
        _pidFiles.Setup(p => p.Inspect(PidPath)).Returns(PidFileState.Unusable("pid file /run/test.pid is a symbolic link; refusing to follow it"));
        Assert.That(Main(command, "--pid-file", PidPath), Is.EqualTo(exitCode));
        Assert.That(_err.ToString(), Is.EqualTo("test: pid file /run/test.pid is a symbolic link; refusing to follow it\n"));
        Assert.That(_out.ToString(), Is.Empty);
    }

    // ---- stop -----------------------------------------------------------------------------------

    [Test]
    public void Stop_ReturnsNotRunning_WhenPidFileIsMissing()
    {
        GivenPidFile(PidFileState.Missing);
        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo("not running"));
    }

    [TestCase(null, TestName = "Stop_RemovesStaleFile_WithoutSignalling_WhenContentIsGarbage")]
    [TestCase(Pid, TestName = "Stop_RemovesStaleFile_WithoutSignalling_WhenContentNamesAPid")]
    public void Stop_RemovesStaleFile_WithoutSignalling(int? recorded)
    {
        GivenPidFile(Stale(recorded));
        GivenNoProcess();
        GivenStaleRemovalSucceeds();
        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo("not running"));
        string? none;
        _pidFiles.Verify(p => p.TryRemoveStale(PidPath, out none), Times.Once);
    }

    [Test]
    public void Stop_StopsTheProcessAnUnlockedFileNames_WhenItRunsThisProgram_AndRemovesTheFileOnlyOnceItExited()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Same);
        var order = new System.Collections.Generic.List<string>();
        _process.Setup(p => p.Signal(15)).Returns(true).Callback(() => order.Add("TERM"));
        _process.Setup(p => p.Signal(18)).Returns(true).Callback(() => order.Add("CONT"));
        _process.Setup(p => p.WaitForExit(TimeSpan.FromSeconds(3))).Returns(true).Callback(() => order.Add("exited"));
        string? none = null;
        _pidFiles.Setup(p => p.TryRemoveNaming(PidPath, Pid, out none)).Returns(true).Callback(() => order.Add("removed"));

        Assert.That(Main("stop", "--pid-file", PidPath, "--stop-timeout", "3"), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo($"stopped (pid {Pid})\n"));
        Assert.That(order, Is.EqualTo(new[] { "TERM", "CONT", "exited", "removed" }));
    }

    [Test]
    public void Stop_LeavesTheFile_WhenTheProcessAnUnlockedFileNamesOutlivesTheTimeout()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Same);
        _process.Setup(p => p.Signal(15)).Returns(true);
        _process.Setup(p => p.Signal(18)).Returns(true);
        _process.Setup(p => p.WaitForExit(TimeSpan.FromSeconds(2))).Returns(false);

        Assert.That(Main("stop", "--pid-file", PidPath, "--stop-timeout", "2"), Is.EqualTo(ExitCodes.Failure));

        Assert.That(_err.ToString(), Is.EqualTo($"test: pid {Pid} did not stop within 2 s (stop --force sends SIGKILL)\n"));
        string? none;
        _pidFiles.Verify(p => p.TryRemoveNaming(It.IsAny<string>(), It.IsAny<int>(), out none), Times.Never);
        _pidFiles.Verify(p => p.TryRemoveStale(It.IsAny<string>(), out none), Times.Never);
    }

    [Test]
    public void Stop_NeverSignalsAnotherProgram_NamedByAnUnlockedFile()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Other);
        GivenStaleRemovalSucceeds();

        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo("not running\n"));
        _process.Verify(p => p.Signal(It.IsAny<int>()), Times.Never);
    }

    [Test]
    public void Stop_AsRoot_SignalsNothing_WhenAnotherUserWroteTheUnlockedFile()
    {
        GivenPidFile(Stale(Pid) with { Owner = 65534 });
        GivenProcessRunning(ProgramMatch.Same);

        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));

        Assert.That(_err.ToString(), Is.EqualTo($"test: pid file /run/test.pid belongs to uid 65534 and no daemon locks it; not signalling pid {Pid}, which it names\n"));
        _process.Verify(p => p.Signal(It.IsAny<int>()), Times.Never, "whoever can write the file must not aim root's stop");
    }

    [Test]
    public void Stop_SignalsNothingAndLeavesTheFile_WhenItCannotTellWhatTheNamedProcessRuns()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Unknown);

        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));

        Assert.That(_err.ToString(), Does.EndWith("cannot tell whether it is this daemon; not signalling it, and leaving the file\n"));
        _process.Verify(p => p.Signal(It.IsAny<int>()), Times.Never);
    }

    [Test]
    public void Start_SaysAlreadyRunning_WhenAnUnlockedFileNamesALiveProcessOfThisProgram()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Same);

        Assert.That(Main("start", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo($"already running (pid {Pid}; pid file /run/test.pid is not locked by it)\n"));
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never, "a second copy would fight the first for its port");
    }

    [TestCase(null, TestName = "Stop_SignalsNobody_WhenLockedFileHoldsGarbage")]
    [TestCase(1, TestName = "Stop_SignalsNobody_WhenLockedFileNamesAnotherPid")]
    public void Stop_SignalsNobody_WhenContentDoesNotNameTheLockHolder(int? recorded)
    {
        GivenPidFile(Locked(Pid, recorded));
        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Does.Contain("not signalling anything"));
        _processes.Verify(p => p.Open(It.IsAny<int>()), Times.Never);
    }

    [Test]
    public void Stop_SendsSigterm_AndWaitsForExit()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        GivenStaleRemovalSucceeds();
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.Signal(15)).Returns(true);
        _process.Setup(p => p.Signal(18)).Returns(true);
        _process.Setup(p => p.WaitForExit(TimeSpan.FromSeconds(3))).Returns(true);

        Assert.That(Main("stop", "--pid-file", PidPath, "--stop-timeout", "3"), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo($"stopped (pid {Pid})"));
        _process.Verify(p => p.Signal(9), Times.Never);
        _process.Verify(p => p.Signal(15), Times.Once);
        _process.Verify(p => p.Signal(18), Times.Once, "SIGCONT after SIGTERM, for a stopped daemon");
    }

    [Test]
    public void Stop_Fails_WhenTheDaemonOutlivesTheTimeout()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.Signal(15)).Returns(true);
        _process.Setup(p => p.Signal(18)).Returns(true);
        _process.Setup(p => p.WaitForExit(TimeSpan.FromSeconds(2))).Returns(false);

        Assert.That(Main("stop", "--pid-file", PidPath, "--stop-timeout", "2"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString().Trim(), Is.EqualTo($"test: pid {Pid} did not stop within 2 s (stop --force sends SIGKILL)"));
        _process.Verify(p => p.Signal(9), Times.Never);
    }

    [Test]
    public void Stop_SendsSigkill_AfterTheTimeout_WithForce()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        GivenStaleRemovalSucceeds();
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.Signal(15)).Returns(true);
        _process.Setup(p => p.Signal(18)).Returns(true);
        _process.Setup(p => p.Signal(9)).Returns(true);
        _process.SetupSequence(p => p.WaitForExit(It.IsAny<TimeSpan>())).Returns(false).Returns(true);

        Assert.That(Main("stop", "--pid-file", PidPath, "--stop-timeout", "1", "--force"), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo($"killed (pid {Pid}) after 1 s"));
        _process.Verify(p => p.Signal(9), Times.Once);
    }

    [Test]
    public void Stop_Refuses_WhenTheLockChangesHandsBeforeTheSignal()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid + 1, Pid + 1));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);

        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Does.Contain("changed hands"));
        _process.Verify(p => p.Signal(It.IsAny<int>()), Times.Never);
    }

    [Test]
    public void Stop_SaysStopped_WhenTheDaemonExitsBeforeItIsOpened()
    {
        GivenPidFile(Locked(Pid, Pid));
        GivenStaleRemovalSucceeds();
        _processes.Setup(p => p.Open(Pid)).Returns((IProcessHandle?)null);
        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
    }

    [Test]
    public void Stop_ReportsThePermissionError_AsOneLine()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.Signal(15)).Throws(new DaemonException($"cannot signal pid {Pid}: Operation not permitted"));
        Assert.That(Main("stop", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo($"test: cannot signal pid {Pid}: Operation not permitted\n"));
    }

    // ---- reload ---------------------------------------------------------------------------------

    [Test]
    public void Reload_Returns7_WhenNotRunning()
    {
        GivenPidFile(Stale(Pid));
        GivenNoProcess();
        Assert.That(Main("reload", "--pid-file", PidPath), Is.EqualTo(ExitCodes.ReloadNotRunning));
        Assert.That(_out.ToString(), Is.EqualTo("not running\n"), "on stdout, as stop and status say it");
        Assert.That(_err.ToString(), Is.Empty);
    }

    [Test]
    public void Reload_SendsSighup_ToTheLiveProcessOfThisProgramThatAnUnlockedFileNames()
    {
        GivenPidFile(Stale(Pid));
        GivenProcessRunning(ProgramMatch.Same);
        _process.Setup(p => p.Signal(1)).Returns(true);

        Assert.That(Main("reload", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));

        Assert.That(_out.ToString(), Is.EqualTo($"reloading (pid {Pid})\n"));
    }

    [Test]
    public void Reload_SendsSighup_ToTheLockHolder()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.Signal(1)).Returns(true);
        Assert.That(Main("reload", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        _process.Verify(p => p.Signal(1), Times.Once);
    }

    // ---- start ----------------------------------------------------------------------------------

    [Test]
    public void Start_SaysAlreadyRunning_WithoutLaunching()
    {
        GivenPidFile(Locked(Pid, Pid));
        Assert.That(Main("start", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo($"already running (pid {Pid})"));
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never);
    }

    [Test]
    public void Start_PrintsTheDaemonsReason_AndFails()
    {
        GivenPidFile(PidFileState.Missing);
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(LaunchResult.Fail("cannot listen on 127.0.0.1:8007: Address already in use"));
        Assert.That(Main("start", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo("test: cannot listen on 127.0.0.1:8007: Address already in use\n"));
        Assert.That(_out.ToString(), Is.Empty);
    }

    [Test]
    public void Start_PassesTheOptions_ToTheLauncher()
    {
        GivenPidFile(PidFileState.Missing);
        LaunchRequest? seen = null;
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>()))
            .Callback<LaunchRequest>(r => seen = r)
            .Returns(new LaunchResult(LaunchOutcome.Ready, Pid, null));

        Assert.That(Main("start", "--pid-file", PidPath, "--log-file", "/var/log/t.log", "--ready-timeout", "7"), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo($"started (pid {Pid})"));
        Assert.That(seen, Is.Not.Null);
        Assert.That(seen!.PidFile, Is.EqualTo(PidPath));
        Assert.That(seen.LogFile, Is.EqualTo("/var/log/t.log"));
        Assert.That(seen.ReadyTimeout, Is.EqualTo(TimeSpan.FromSeconds(7)));
    }

    [Test]
    public void Start_ReportsAlreadyRunning_WhenItLosesTheRace()
    {
        GivenPidFile(PidFileState.Missing, Locked(Pid, Pid));
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(new LaunchResult(LaunchOutcome.AlreadyRunning, Pid, null));
        Assert.That(Main("start", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo($"already running (pid {Pid})"));
    }

    [Test]
    public void Start_WaitsForAStartingDaemon_AndSaysAlreadyRunningOnceItIsReady()
    {
        GivenPidFile(PidFileState.Starting(Pid), PidFileState.Starting(Pid), PidFileState.Starting(Pid), Locked(Pid, Pid));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.WaitForExit(It.IsAny<TimeSpan>())).Returns(false);

        Assert.That(Main("start", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString().Trim(), Is.EqualTo($"already running (pid {Pid})"));
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never);
    }

    [Test]
    public void Start_Fails_WhenTheDaemonAnotherStartLaunchedDiesBeforeItIsReady()
    {
        GivenPidFile(PidFileState.Missing, PidFileState.Starting(Pid), PidFileState.Missing);
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(new LaunchResult(LaunchOutcome.AlreadyRunning, Pid, null));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.WaitForExit(It.IsAny<TimeSpan>())).Returns(true);

        Assert.That(Main("start", "--pid-file", PidPath, "--log-file", "/var/log/t.log"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo($"test: pid {Pid}, started by another 'start', stopped before it was ready (see /var/log/t.log)\n"));
        Assert.That(_out.ToString(), Is.Empty, "never 'already running' for a daemon that is not");
    }

    [Test]
    public void Start_Fails_WhenAnotherStartsDaemonIsNotReadyWithinTheReadyTimeout()
    {
        _pidFiles.Setup(p => p.Inspect(PidPath)).Returns(PidFileState.Starting(Pid));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.WaitForExit(It.IsAny<TimeSpan>())).Returns(false);

        Assert.That(Main("start", "--pid-file", PidPath, "--log-file", "/var/log/t.log", "--ready-timeout", "0.1"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo($"test: pid {Pid}, started by another 'start', is still not ready after 0.1 s (see /var/log/t.log)\n"));
    }

    [Test]
    public void Status_SaysStarting_WithItsOwnExitCode_WhileTheDaemonIsNotReady()
    {
        GivenPidFile(PidFileState.Starting(Pid));
        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Starting));
        Assert.That(_out.ToString(), Is.EqualTo($"starting (pid {Pid})\n"));
    }

    [Test]
    public void Status_IsUnknown_WhenTheLockHolderIsNotThePidTheFileNames()
    {
        GivenPidFile(Locked(Pid, Pid + 1));
        Assert.That(Main("status", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Unknown));
        Assert.That(_err.ToString(), Does.Contain("not signalling anything"));
        Assert.That(_out.ToString(), Is.Empty, "never 'running' for a holder the file does not name");
    }

    [Test]
    public void Restart_SaysWhatToDo_WhenTheDaemonOutlivesTheStopTimeout()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid), Locked(Pid, Pid), Locked(Pid, Pid));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid, It.IsAny<TimeSpan>())).Returns(new HandoverProbe(HandoverProbeResult.NoChannel, 0));
        _processes.Setup(p => p.Open(Pid)).Returns(_process.Object);
        _process.Setup(p => p.Signal(15)).Returns(true);
        _process.Setup(p => p.Signal(18)).Returns(true);
        _process.Setup(p => p.WaitForExit(TimeSpan.FromSeconds(1))).Returns(false);

        Assert.That(Main("restart", "--pid-file", PidPath, "--stop-timeout", "1"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_out.ToString(), Is.EqualTo($"pid {Pid} has no control socket to hand its listeners over: stopping it, then starting\n"));
        Assert.That(_err.ToString(), Is.EqualTo($"test: pid {Pid} did not stop within 1 s and may still stop on its own; nothing new was started: run 'test start' once it has stopped, or restart with a longer --stop-timeout (or --force)\n"));
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never);
    }

    [Test]
    public void Start_FailsAtOnce_ForAnUnknownUser()
    {
        GivenPidFile(PidFileState.Missing);
        Assert.That(Main("start", "--pid-file", PidPath, "--user", "no-such-user-xyz"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo("test: unknown user 'no-such-user-xyz'\n"));
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never);
    }

    [TestCase("start", "--user", "nobody")]
    [TestCase("start", "--group", "nogroup")]
    [TestCase("restart", "--user", "nobody")]
    [TestCase("run", "--user", "nobody")]
    public void UserOrGroup_FailsBeforeAnythingStarts_WhenTheUserDatabaseCannotBeLoaded(string command, string option, string value)
    {
        const string Problem = "cannot load libMonoPosixHelper.so, Mono.Posix's native helper: it must be in /opt/test";
        int exitCode = CreateDaemon(loadUserDatabase: () => Problem).Main([command, "--pid-file", PidPath, option, value]);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.NotInstalled));
        Assert.That(_err.ToString(), Is.EqualTo($"test: {Problem}\n"), "one line, as for any command before");
        Assert.That(_out.ToString(), Is.Empty);
        _pidFiles.Verify(p => p.Inspect(It.IsAny<string>()), Times.Never, "nothing is looked at, let alone started");
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never);
    }

    [TestCase("status", "--user", "nobody")]
    [TestCase("stop", "--group", "nogroup")]
    [TestCase("start")]
    public void UserDatabase_IsNotLoaded_ByACommandThatDoesNotChangeUser(string command, params string[] options)
    {
        int loads = 0;
        GivenPidFile(PidFileState.Missing);
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(new LaunchResult(LaunchOutcome.Ready, Pid, null));
        int exitCode = CreateDaemon(loadUserDatabase: () => { loads++; return "missing"; }).Main([command, "--pid-file", PidPath, .. options]);

        Assert.That(exitCode, Is.EqualTo(command == "status" ? ExitCodes.NotRunning : ExitCodes.Success), _err.ToString());
        Assert.That(loads, Is.EqualTo(0), "Mono.Posix's helper is for --user and --group with start, restart and run only");
    }

    // ---- restart --------------------------------------------------------------------------------

    [Test]
    public void Restart_HandsOver_WhenTheRunningDaemonAnswers_WithoutStoppingIt()
    {
        GivenPidFile(Locked(Pid, Pid));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid, TimeSpan.FromSeconds(30))).Returns(new HandoverProbe(HandoverProbeResult.Answers, 1));
        LaunchRequest? seen = null;
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Callback<LaunchRequest>(r => seen = r).Returns(new LaunchResult(LaunchOutcome.Ready, Pid + 1, null));

        Assert.That(Main("restart", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString(), Is.EqualTo($"restarted (pid {Pid + 1}; pid {Pid} hands over and drains)\n"));
        Assert.That(seen!.TakeOver, Is.True);
        _processes.Verify(p => p.Open(It.IsAny<int>()), Times.Never, "nothing is signalled");
    }

    [Test]
    public void Restart_SaysTheRunningDaemonStillServes_WhenTheNextGenerationFails()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid, TimeSpan.FromSeconds(30))).Returns(new HandoverProbe(HandoverProbeResult.Answers, 1));
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(LaunchResult.Fail("startup failed: bad config"));
        string? none;
        _pidFiles.Setup(p => p.TryRemoveStale(PidPath, out none)).Returns(true);

        Assert.That(Main("restart", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo($"test: restart failed, pid {Pid} still runs and keeps its listeners: startup failed: bad config\n"));
        _pidFiles.Verify(p => p.TryRemoveStale(PidPath, out none), Times.Once, "a fresh file the failed generation left goes");
    }

    [Test]
    public void Restart_SaysTheRunningDaemonIsStopping_WhenAStopAbortedTheHandover()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid, Pid));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid, TimeSpan.FromSeconds(30))).Returns(new HandoverProbe(HandoverProbeResult.Answers, 1));
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(LaunchResult.Fail($"pid {Pid} did not hand over: it is stopping (SIGTERM)"));
        GivenStaleRemovalSucceeds();

        Assert.That(Main("restart", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Is.EqualTo($"test: restart failed, pid {Pid} is stopping (nothing new was started): pid {Pid} did not hand over: it is stopping (SIGTERM)\n"), "never 'still serves' for a daemon on its way out");
    }

    [Test]
    public void Restart_NamesTheGenerationThatRunsNow_WhenAnotherRestartReplacedTheDaemon()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid + 7, Pid + 7));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid, TimeSpan.FromSeconds(30))).Returns(new HandoverProbe(HandoverProbeResult.Answers, 1));
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(LaunchResult.Fail("the daemon to take over from is no longer running; nothing new was started"));
        GivenStaleRemovalSucceeds();

        Assert.That(Main("restart", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        Assert.That(_err.ToString(), Does.StartWith($"test: restart failed, pid {Pid + 7} runs now (another restart replaced pid {Pid}): "), "not 'stopped meanwhile'");
    }

    [Test]
    public void Restart_FollowsTheGenerationThatTookOver_WhenTheFirstHasNoChannelAnyMore()
    {
        GivenPidFile(Locked(Pid, Pid), Locked(Pid + 7, Pid + 7));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid, TimeSpan.FromSeconds(30))).Returns(new HandoverProbe(HandoverProbeResult.NoChannel, 0));
        _launcher.Setup(l => l.ProbeHandover(PidPath, Pid + 7, TimeSpan.FromSeconds(30))).Returns(new HandoverProbe(HandoverProbeResult.Answers, 1));
        _launcher.Setup(l => l.Launch(It.IsAny<LaunchRequest>())).Returns(new LaunchResult(LaunchOutcome.Ready, Pid + 8, null));

        Assert.That(Main("restart", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString(), Is.EqualTo($"restarted (pid {Pid + 8}; pid {Pid + 7} hands over and drains)\n"), "it handed over to another restart meanwhile: never a stop");
    }

    [Test]
    public void Restart_DoesNotStart_WhenStopFails()
    {
        GivenPidFile(Locked(Pid, null), Locked(Pid, null));
        Assert.That(Main("restart", "--pid-file", PidPath), Is.EqualTo(ExitCodes.Failure));
        _launcher.Verify(l => l.Launch(It.IsAny<LaunchRequest>()), Times.Never);
    }

    // ---- usage ----------------------------------------------------------------------------------

    [TestCase(new[] { "start", "--pidfile", "x" }, "unknown option '--pidfile'")]
    [TestCase(new[] { "start", "--stop-timeout", "soon" }, "invalid value 'soon' for --stop-timeout")]
    [TestCase(new[] { "start", "--stop-timeout", "-1" }, "invalid value '-1' for --stop-timeout")]
    [TestCase(new[] { "start", "--port", "70000" }, "invalid value '70000' for --port")]
    [TestCase(new[] { "start", "--pid-file" }, "option --pid-file needs a value")]
    [TestCase(new[] { "start", "stop" }, "unexpected argument 'stop'")]
    [TestCase(new[] { "start", "--force=yes" }, "option --force takes no value")]
    public void Main_ReturnsUsage_ForABadCommandLine(string[] args, string message)
    {
        Assert.That(Main(args), Is.EqualTo(ExitCodes.Usage));
        Assert.That(_err.ToString(), Does.StartWith($"test: {message}"));
        Assert.That(_err.ToString().TrimEnd('\n'), Does.Not.Contain("\n"), "one line");
        Assert.That(_out.ToString(), Is.Empty);
    }

    [TestCase(new string[0], "no command given")]
    [TestCase(new[] { "launch" }, "unknown command 'launch'")]
    [TestCase(new[] { "strat" }, "unknown command 'strat' (did you mean 'start'?)")]
    [TestCase(new[] { "stopp" }, "unknown command 'stopp' (did you mean 'stop'?)")]
    [TestCase(new[] { "sttus" }, "unknown command 'sttus' (did you mean 'status'?)")]
    [TestCase(new[] { "relaod", "--force" }, "unknown command 'relaod' (did you mean 'reload'?)")]
    [TestCase(new[] { "rn" }, "unknown command 'rn' (did you mean 'run'?)")]
    public void Main_ShowsTheUsageLine_WhenTheCommandIsMissingOrUnknown(string[] args, string message)
    {
        Assert.That(Main(args), Is.EqualTo(ExitCodes.Usage));
        Assert.That(_err.ToString(), Is.EqualTo($"test: {message}\nUsage: test {{start|stop|restart|status|reload|run}} [options]\n"));
        Assert.That(_out.ToString(), Is.Empty);
    }

    [Test]
    public void Main_PrintsTheNameAndVersion_ForVersion()
    {
        Assert.That(Main("--version"), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString(), Does.Match(@"^test \S+\n$"));
        Assert.That(_err.ToString(), Is.Empty);
    }

    [Test]
    public void Main_ShowsOneCommandsHelp_ForCommandHelp()
    {
        Assert.That(Main("stop", "--help"), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString(), Does.StartWith("Usage: test stop [OPTIONS]\n\nstop the daemon").And.Contain("--stop-timeout SECONDS"));
        Assert.That(_out.ToString(), Does.Not.Contain("Commands:"));
    }

    [TestCase("--help")]
    [TestCase("-h")]
    [TestCase("help")]
    public void Main_PrintsUsageOnStdout_ForHelp(string help)
    {
        Assert.That(Main(help), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString(), Does.StartWith("Usage: test {start|stop|restart|status|reload|run} [options]\n")
            .And.Contain("--pid-file PATH").And.Contain("--stop-timeout SECONDS").And.Contain("--force")
            .And.Contain("Options of test:").And.Contain("--port N"));
        Assert.That(_err.ToString(), Is.Empty);
    }

    [Test]
    public void Options_AreAcceptedBeforeAndAfterTheCommand()
    {
        GivenPidFile(PidFileState.Missing);
        Assert.That(Main("--pid-file=" + PidPath, "status", "--port", "9"), Is.EqualTo(ExitCodes.NotRunning));
    }

    [Test]
    public void Help_ShowsTheDefaultsInEffect_IncludingOnesASubclassPresets()
    {
        TestDaemon daemon = CreateDaemon();
        daemon.Options.StopTimeout = TimeSpan.FromSeconds(3);
        daemon.Options.Umask = Convert.ToInt32("027", 8);

        Assert.That(daemon.Main(["--help"]), Is.EqualTo(ExitCodes.Success));
        Assert.That(_out.ToString(), Does.Contain("how long stop waits after SIGTERM (default: 3)\n")
            .And.Contain("file mode creation mask of the daemon (default: 027)\n")
            .And.Contain("how long start waits for readiness (default: 30)\n")
            .And.Contain("pid file (default: /run/test.pid)\n"));
        foreach (CommandInfo command in CommandTable.All)
        {
            Assert.That(_out.ToString(), Does.Contain($"  {command.Word,-9} {command.Summary}\n"), "every command of the one table");
        }
    }

    [Test]
    public void Defaults_DeriveFromTheName_ForRootAndForUsers()
    {
        TestDaemon root = CreateDaemon(isRoot: true);
        Assert.That(root.PidFilePath, Is.EqualTo("/run/test.pid"));
        Assert.That(root.LogFilePath, Is.EqualTo("/var/log/test.log"));

        var user = new Daemon.Options.DaemonPaths("test", isRoot: false, runtimeDirectory: "/run/user/1000", stateHome: null, home: "/home/u");
        Assert.That(user.DefaultPidFile, Is.EqualTo("/run/user/1000/test.pid"));
        Assert.That(user.DefaultLogFile, Is.EqualTo("/home/u/.local/state/test/test.log"));

        var bare = new Daemon.Options.DaemonPaths("test", isRoot: false, runtimeDirectory: null, stateHome: null, home: "/home/u");
        Assert.That(bare.DefaultPidFile, Is.EqualTo("/home/u/.local/state/test/test.pid"));
    }

    /// <summary>A clock stopped at <paramref name="now"/>, in <paramref name="zone"/>.</summary>
    private sealed class FixedClock(DateTimeOffset now, TimeZoneInfo zone) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => zone;
    }

    /// <summary>A daemon that does nothing, with one option of its own.</summary>
    private sealed class TestDaemon(DaemonSystem system) : DaemonBase("test", system)
    {
        public int Port { get; private set; }

        protected override void ConfigureOptions(DaemonOptionSet options) =>
            options.Add("--port", "N", "a port", v => Port = int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) is var p and > 0 and < 65536 ? p : throw new FormatException("bad port"));

        protected override Task RunAsync(CancellationToken stoppingToken) => Task.Delay(Timeout.Infinite, stoppingToken);
    }
}
