namespace Daemon.Core.Tests.Integration;

/// <summary>What every failure a user can cause must look like: one clear line on stderr, no stack trace.</summary>
public static class CommandAssertions
{
    /// <summary>
    /// Fails unless <paramref name="result"/> failed with <paramref name="exitCode"/> (never
    /// success) and said exactly one non-empty line on stderr, without a stack trace; that line.
    /// </summary>
    public static string AssertOneClearLine(this CommandResult result, int exitCode, string context = "")
    {
        string why = context.Length > 0 ? $"{context}\n{result}" : result.ToString();
        Assert.That(result.ExitCode, Is.Not.EqualTo(ExitCodes.Success), "a failure, not a success: " + why);
        Assert.That(result.ExitCode, Is.EqualTo(exitCode), why);
        AssertNoStackTrace(result.Error, why);
        string[] lines = result.Error.TrimEnd('\n').Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1), "one line: " + why);
        Assert.That(lines[0].Trim(), Is.Not.Empty, "a line that says something: " + why);
        return lines[0];
    }

    /// <summary>Fails when <paramref name="text"/> (an output, a log) holds a .NET stack trace or an unhandled exception.</summary>
    public static void AssertNoStackTrace(string text, string context = "")
    {
        Assert.That(text, Does.Not.Contain("   at ").And.Not.Contain("Unhandled").And.Not.Contain("type initializer"), "no stack trace: " + context);
    }
}
