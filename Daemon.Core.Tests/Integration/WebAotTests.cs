using System.Text.RegularExpressions;
using Daemon.Core.Tests.Hosting;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The web example (<c>WebApplication.CreateSlimBuilder</c> under <c>WebDaemon</c>) published
/// with Native AOT: a publish without trimming or AOT warnings, and the restarts under load that
/// the JIT build passes (<see cref="WebDaemonTests"/>), with no failed request.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class WebAotTests : DaemonFixture
{
    private static string _folder = null!;
    private static string _publishOutput = null!;

    [OneTimeSetUp]
    public static void PublishTheWebExample()
    {
        _folder = TestEnvironment.CreateTestFolder("webaot");
        _publishOutput = NativeAotTests.Publish(Path.Combine(TestEnvironment.RepositoryRoot, "Daemon.Example.Web", "Daemon.Example.Web.csproj"), _folder);
    }

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

    protected override ExampleDaemon CreateDaemon() => new(Path.Combine(_folder, "out", "Daemon.Example.Web"), "webaot", takesPort: true);

    [Test]
    public void Publish_GivesNoTrimmingOrAotWarning()
    {
        string[] warnings = _publishOutput.Split('\n').Where(l => Regex.IsMatch(l, @"\bwarning [A-Z]+\d+")).ToArray();
        Assert.That(_publishOutput, Does.Contain("Daemon.Example.Web ->"), "the publish output was read");
        Assert.That(warnings, Is.Empty, string.Join("\n", warnings));
    }

    [Test]
    public void RestartedTenTimesUnderLoad_FailsNoRequest()
    {
        WebDaemonTests.RestartTenTimesUnderLoad(_daemon);
    }
}
