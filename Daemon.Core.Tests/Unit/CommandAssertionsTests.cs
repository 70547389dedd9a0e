using NUnit.Framework.Internal;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The harness's check for "one clear line on stderr": it passes only a failure that says one
/// line, with the expected code, and no stack trace (the check it replaced passed a success too).
/// </summary>
[TestFixture]
public sealed class CommandAssertionsTests
{
    [Test]
    public void AssertOneClearLine_PassesAFailureThatSaysOneLine_AndReturnsIt()
    {
        var result = new CommandResult(1, "", "Daemon.Example: cannot listen on 127.0.0.1:1: Address already in use\n");
        Assert.That(result.AssertOneClearLine(1), Is.EqualTo("Daemon.Example: cannot listen on 127.0.0.1:1: Address already in use"));
    }

    [TestCase(0, "", TestName = "AssertOneClearLine_Fails_OnASilentSuccess")]
    [TestCase(0, "x: a warning\n", TestName = "AssertOneClearLine_Fails_OnASuccessThatSaysALine")]
    [TestCase(2, "x: a usage error\n", TestName = "AssertOneClearLine_Fails_OnAnotherExitCode")]
    [TestCase(1, "", TestName = "AssertOneClearLine_Fails_OnAFailureThatSaysNothing")]
    [TestCase(1, "x: first\nx: second\n", TestName = "AssertOneClearLine_Fails_OnTwoLines")]
    [TestCase(1, "Unhandled exception. System.InvalidOperationException: boom\n", TestName = "AssertOneClearLine_Fails_OnAnUnhandledException")]
    [TestCase(1, "x: boom   at Daemon.DaemonBase.Main()\n", TestName = "AssertOneClearLine_Fails_OnAStackFrame")]
    public void AssertOneClearLine_Fails(int exitCode, string error)
    {
        Assert.That(Fails(() => new CommandResult(exitCode, "", error).AssertOneClearLine(1)), Is.True);
    }

    [TestCase("Unhandled exception. System.Exception: x\n   at Program.Main()\n")]
    [TestCase("A type initializer threw an exception\n")]
    public void AssertNoStackTrace_Fails_OnAStackTrace(string text)
    {
        Assert.That(Fails(() => CommandAssertions.AssertNoStackTrace(text)), Is.True);
        Assert.That(Fails(() => CommandAssertions.AssertNoStackTrace("Daemon.Example[12]: stopped (exit 0)\n")), Is.False);
    }

    /// <summary>True when <paramref name="check"/> fails, without failing the test that runs it.</summary>
    private static bool Fails(Action check)
    {
        using (new TestExecutionContext.IsolatedContext())
        {
            try
            {
                check();
                return false;
            }
            catch (AssertionException)
            {
                return true;
            }
        }
    }
}
