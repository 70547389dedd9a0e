namespace Daemon.Core.Tests.Docs;

/// <summary>
/// A Program.cs that calls <c>new MyDaemon().Main(args);</c> and drops the value still exits with
/// the command's code: Main sets <see cref="System.Environment.ExitCode"/> too.
/// </summary>
[TestFixture]
[Category("Integration")]
public sealed class ProgramWithoutReturnTests : DaemonFixture
{
    protected override ExampleDaemon CreateDaemon() =>
        new(ExampleDaemon.BuiltProgram(Path.Combine("docs", "snippets", "NoReturn"), "NoReturn"), "noreturn", takesPort: false);

    [Test]
    public void FailedStart_ExitsOne_AndStatusOfTheStoppedDaemon_ExitsThree()
    {
        CommandResult failed = _daemon.Run("start", "--fail");
        Assert.That(failed.ExitCode, Is.EqualTo(1), failed.ToString());
        Assert.That(failed.Error, Is.EqualTo("NoReturn: told to fail\n"));

        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(3), status.ToString());
        Assert.That(_daemon.Run("status", "--bogus").ExitCode, Is.EqualTo(2), "a usage error");
    }

    [Test]
    public void StartedDaemon_StatusExitsZero_AndStopExitsZero()
    {
        int pid = _daemon.Start();
        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(0), status.ToString());
        Assert.That(ExampleDaemon.FirstLine(status.Output), Is.EqualTo($"running (pid {pid})"));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(3));
    }
}
