using System.Text.RegularExpressions;
using Daemon.Launching;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The native detach stage keeps a C copy of the stage protocol: these fail when it disagrees
/// with <see cref="StageProtocol"/>.
/// </summary>
[TestFixture]
public sealed class StageProtocolTests
{
    private static readonly string[] _signalNames = { "", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM" };

    private static string NativeStage => File.ReadAllText(TestEnvironment.DetachStageSource);

    [Test]
    public void NativeStage_ReadsTheSameMarkerVariables_AndStageNames()
    {
        string c = NativeStage;
        Assert.That(c, Does.Contain($"getenv(\"{StageProtocol.KindVariable}\")"));
        Assert.That(c, Does.Contain($"getenv(\"{StageProtocol.ReadyFdVariable}\")"));
        Assert.That(c, Does.Contain($"strcmp(stage, \"{StageProtocol.DetachStage}\")"));
        Assert.That(c, Does.Contain($"setenv(\"{StageProtocol.KindVariable}\", \"{StageProtocol.DaemonStage}\", 1)"));
    }

    [Test]
    public void NativeStage_SendsTheSameMessageKinds()
    {
        string c = NativeStage;
        Assert.That(c, Does.Contain($"\"{StageProtocol.Error} %s: %s\\n\""), "errors go up as ERROR lines");
        Assert.That(c, Does.Contain($"\"{StageProtocol.Pid} %d\\n\""), "the daemon's pid goes up as a PID line");
    }

    [Test]
    public void NativeStage_ResetsTheSameSignals()
    {
        Match stops = Regex.Match(NativeStage, @"int stops\[\] = \{([^}]*)\}");
        Assert.That(stops.Success, Is.True, "the C list of signals to reset");
        int[] native = stops.Groups[1].Value.Split(',').Select(n => Array.IndexOf(_signalNames, n.Trim())).ToArray();
        Assert.That(native, Has.None.EqualTo(-1), stops.Value);
        Assert.That(native, Is.EqualTo(StageProtocol.ResetSignals), "same signals, same order");
    }

    [Test]
    public void NativeStage_FailsWithTheSameExitCode()
    {
        MatchCollection exits = Regex.Matches(NativeStage, @"report\(fd, [^;]*\); _exit\((\d+)\);");
        Assert.That(exits, Is.Not.Empty);
        Assert.That(exits.Select(m => int.Parse(m.Groups[1].Value)), Is.All.EqualTo(StageProtocol.StageFailed));
    }
}
