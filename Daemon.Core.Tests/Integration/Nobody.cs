namespace Daemon.Core.Tests.Integration;

/// <summary>The second local user of the security tests: <c>nobody</c>, through runuser.</summary>
public static class Nobody
{
    /// <summary>The tool that runs a command as another user.</summary>
    public const string RunUser = "/usr/sbin/runuser";

    /// <summary>runuser's arguments that run <paramref name="command"/> (a program and its arguments) as nobody.</summary>
    public static IEnumerable<string> Runs(IEnumerable<string> command) => new[] { "-u", "nobody", "--" }.Concat(command);
}
