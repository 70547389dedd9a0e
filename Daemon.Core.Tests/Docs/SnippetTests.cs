using System.Text.RegularExpressions;

namespace Daemon.Core.Tests.Docs;

/// <summary>
/// The C# that readers copy from the READMEs is code that builds: each block is a file of a
/// project under docs/snippets that the tests build, held verbatim, and the README's daemon runs.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class SnippetTests
{
    private const string Marker = "<!-- snippet: ";

    private static readonly string[] _readmes = { "README.md", "Daemon.Core/PACKAGE.md", "Daemon.Hosting/PACKAGE.md", "Daemon.Hosting.Web/PACKAGE.md" };

    private ExampleDaemon? _daemon;

    [TearDown]
    public void TearDown() => _daemon?.Dispose();

    [TestCaseSource(nameof(_readmes))]
    public void EveryCSharpBlock_IsAFileOfASnippetProjectTheTestsBuild_Verbatim(string readme)
    {
        string root = TestEnvironment.RepositoryRoot;
        string testProject = File.ReadAllText(Path.Combine(root, "Daemon.Core.Tests", "Daemon.Core.Tests.csproj"));
        List<(string? File, string Code)> blocks = CSharpBlocks(File.ReadAllText(Path.Combine(root, readme)));
        Assert.That(blocks, Is.Not.Empty, $"{readme} has C# to check");

        foreach ((string? file, string code) in blocks)
        {
            Assert.That(file, Is.Not.Null, $"{readme}: a ```csharp block without a '{Marker}PATH -->' line before it:\n{code}");
            Assert.That(file, Does.StartWith("docs/snippets/"), readme);
            string path = Path.Combine(root, file!);
            Assert.That(File.Exists(path), Is.True, $"{readme} names {file}, which does not exist");
            Assert.That(code, Is.EqualTo(File.ReadAllText(path)), $"{readme}: the block marked {file} is not that file, verbatim");

            string project = Directory.GetFiles(Path.GetDirectoryName(path)!, "*.csproj").Single();
            string reference = Path.GetRelativePath(Path.Combine(root, "Daemon.Core.Tests"), project).Replace('/', '\\');
            Assert.That(testProject, Does.Contain($"\"{reference}\""), $"{project} is built with the tests");
        }
    }

    [TestCase("-5")]
    [TestCase("0")]
    [TestCase("soon")]
    public void TickDaemon_RefusesAnIntervalThatIsNotAboveZero_AsAUsageError(string every)
    {
        _daemon = new ExampleDaemon(Program("TickDaemon"), "tick", takesPort: false);

        CommandResult started = _daemon.Run("start", "--every", every);

        Assert.That(started.ExitCode, Is.EqualTo(2), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"TickDaemon: invalid value '{every}' for --every: expected a number of seconds above 0 and at most 86400 (try 'TickDaemon --help')\n"));
        Assert.That(started.Output, Is.Empty, "never 'started'");
        Assert.That(File.Exists(_daemon.PidFile) || File.Exists(_daemon.LogFile), Is.False, "nothing was started");
    }

    [Test]
    public void TickDaemon_Ticks_AndStops()
    {
        _daemon = new ExampleDaemon(Program("TickDaemon"), "tick", takesPort: false);

        int pid = _daemon.Start("--every", "0.1");

        Assert.That(_daemon.WaitForLog(log => ExampleDaemon.Count(log, "\ntick ") >= 2), Is.True, _daemon.Log);
        Assert.That(_daemon.Log, Does.Contain($"TickDaemon[{pid}]: ticking every 0.1 s"));
        Assert.That(_daemon.Run("stop").Output, Is.EqualTo($"stopped (pid {pid})\n"));
    }

    [Test]
    public void HostedWorker_RunsItsBackgroundService_AsADaemon()
    {
        _daemon = new ExampleDaemon(Program("HostedWorker"), "worker", takesPort: false);

        int pid = _daemon.Start();

        Assert.That(_daemon.WaitForLog("info: Worker[1] working"), Is.True, _daemon.Log);
        Assert.That(_daemon.Run("stop").Output, Is.EqualTo($"stopped (pid {pid})\n"));
    }

    /// <summary>The C# blocks of a markdown text, each with the file its marker line names (null without one).</summary>
    private static List<(string? File, string Code)> CSharpBlocks(string markdown)
    {
        var blocks = new List<(string?, string)>();
        foreach (Match block in Regex.Matches(markdown, @"(?:^|\n)(?<before>[^\n]*)\n```csharp\n(?<code>.*?)```\n", RegexOptions.Singleline))
        {
            string before = block.Groups["before"].Value;
            string? file = before.StartsWith(Marker, StringComparison.Ordinal) && before.EndsWith(" -->", StringComparison.Ordinal)
                ? before[Marker.Length..^" -->".Length]
                : null;
            blocks.Add((file, block.Groups["code"].Value));
        }

        return blocks;
    }

    /// <summary>The apphost of a snippet project, built with the tests.</summary>
    private static string Program(string name) => ExampleDaemon.BuiltProgram(Path.Combine("docs", "snippets", name), name);
}
