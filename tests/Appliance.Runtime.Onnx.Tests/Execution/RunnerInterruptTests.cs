using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// The engine's watchdog (and stopping) interrupts a run through <see cref="IModelRunner.Interrupt"/>: ONNX Runtime
/// must really end the session run with an error, and the runner must serve the next run as if nothing happened (the
/// terminate flag cleared, the other sequences' KV cache intact).
/// </summary>
public abstract class RunnerInterruptTests(TinyModelFixture model)
{
    [Fact]
    public void An_interrupted_run_throws_and_the_next_run_serves_the_other_sequences_unchanged()
    {
        using var runner = model.CreateRunner(4);
        using var reference = model.CreateRunner(4);
        var prompt = EngineCorrectnessTests.Prompts[3];
        runner.Execute([new RunnerSequence(1, prompt, 0)]);
        reference.Execute([new RunnerSequence(1, prompt, 0)]);
        var expected = reference.Execute([new RunnerSequence(1, new[] { 7 }, prompt.Length)]).ToArray();

        var failure = InterruptedRun(runner);

        var terminated = Assert.IsType<OnnxRuntimeException>(failure);
        Assert.Contains("terminate", terminated.Message, StringComparison.OrdinalIgnoreCase);
        var actual = runner.Execute([new RunnerSequence(1, new[] { 7 }, prompt.Length)]).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 4);
        }
    }

    /// <summary>
    /// Prefills throwaway sequences while another thread keeps interrupting, until one run is stopped (the flag is
    /// cleared as each run starts, so the interrupt must land inside a run).
    /// </summary>
    private static Exception? InterruptedRun(OnnxDecoderRunner runner)
    {
        using var done = new CancellationTokenSource();
        using var started = new ManualResetEventSlim();
        var interrupter = Task.Run(() =>
        {
            while (!done.IsCancellationRequested)
            {
                runner.Interrupt();
                started.Set();
                Thread.Yield(); // a busy loop, but not one that holds a core the other test assemblies need
            }
        });
        try
        {
            Assert.True(started.Wait(TimeSpan.FromSeconds(20)));
            var longPrompt = Enumerable.Range(0, 120).Select(i => (i * 37) % 500).ToArray();
            for (var attempt = 0; attempt < 200; attempt++)
            {
                var id = 100 + attempt;
                try
                {
                    runner.Execute([new RunnerSequence(id, longPrompt, 0)]);
                }
                catch (Exception exception)
                {
                    return exception;
                }
                finally
                {
                    runner.Release(id);
                }
            }

            return null;
        }
        finally
        {
            done.Cancel();
            interrupter.Wait();
        }
    }
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatRunnerInterruptTests(ConcatModelFixture model) : RunnerInterruptTests(model);

[Collection(SharedBufferModelCollection.Name)]
public sealed class SharedBufferRunnerInterruptTests(SharedBufferModelFixture model) : RunnerInterruptTests(model);
