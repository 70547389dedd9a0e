using Daemon.Interop;
using Daemon.Processes;

namespace Daemon.Core.Tests.Unit;

/// <summary>Which program a process runs, as the commands compare it with their own.</summary>
[TestFixture]
public sealed class ProgramIdentityTests
{
    private static readonly FileStatus _apphost = new(1, 100, 0x81ed, 1, 0, 0);
    private static readonly FileStatus _dll = new(1, 101, 0x81a4, 1, 0, 0);
    private static readonly FileStatus _dotnet = new(1, 200, 0x81ed, 1, 0, 0);
    private static readonly FileStatus _other = new(1, 300, 0x81ed, 1, 0, 0);

    [TestCase("dotnet\0/opt/app/app.dll\0run\0", "/opt/app/app.dll")]
    [TestCase("dotnet\0exec\0--runtimeconfig\0/opt/app/app.runtimeconfig.json\0/opt/app/app.dll\0run\0", "/opt/app/app.dll")]
    [TestCase("dotnet\0--roll-forward\0Major\0app.dll\0", "app.dll")]
    [TestCase("dotnet\0", null)]
    public void AppArgument_IsTheFirstArgumentAfterTheHostsOptions(string commandLine, string? app)
    {
        Assert.That(ProgramIdentity.AppArgument(Encoding.UTF8.GetBytes(commandLine)), Is.EqualTo(app));
    }

    [Test]
    public void AProgramFileReplacedSince_AtTheSamePath_IsTheSameProgram()
    {
        // An upgrade: the daemon runs the deleted file, the command the one now at the path.
        var daemon = new ProgramIdentity("/opt/app/app", _other, null, null);
        var command = new ProgramIdentity("/opt/app/app", _apphost, null, null);
        Assert.That(daemon.IsSameProgram(command), Is.True);
    }

    [Test]
    public void TheSameFileUnderAnotherPath_IsTheSameProgram()
    {
        var daemon = new ProgramIdentity("/srv/app/app", _apphost, null, null);
        var command = new ProgramIdentity("/opt/app/app", _apphost, null, null);
        Assert.That(daemon.IsSameProgram(command), Is.True);
    }

    [Test]
    public void AnotherFileAtAnotherPath_IsAnotherProgram()
    {
        var stranger = new ProgramIdentity("/usr/bin/sleep", _other, null, null);
        var command = new ProgramIdentity("/opt/app/app", _apphost, null, null);
        Assert.That(stranger.IsSameProgram(command), Is.False);
    }

    [Test]
    public void TwoAppsUnderTheDotnetHost_AreTwoPrograms()
    {
        var daemon = new ProgramIdentity("/usr/share/dotnet/dotnet", _dotnet, "/opt/other/other.dll", null);
        var command = new ProgramIdentity("/usr/share/dotnet/dotnet", _dotnet, "/opt/app/app.dll", _dll);
        Assert.That(daemon.IsSameProgram(command), Is.False, "the same host is not the same program");
    }

    [Test]
    public void TheApphost_AndTheDotnetHostRunningTheDllBesideIt_AreOneProgram()
    {
        var daemon = new ProgramIdentity("/usr/share/dotnet/dotnet", _dotnet, "/opt/app/app.dll", _dll);
        var command = new ProgramIdentity("/opt/app/app", _apphost, null, null);
        Assert.That(daemon.IsSameProgram(command), Is.True);
        Assert.That(command.IsSameProgram(daemon), Is.True);
    }
}
